"""A new connection's first call imports only what it needs (docs/performance.md).

PL/Python starts a new interpreter in each backend, so every module plpy_lambda imports
is paid for again by the first call of every connection. What only a rare path needs
(a client context, log_type => 'Tail', a proxy, a configured endpoint URL, a shared AWS
file, a retried delivery) is imported where it is used, and these tests keep it so: in
a fresh interpreter (-I, nothing of this environment's) for the modules, and in a new
backend for the first call itself.
"""

import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import ROOT
from plpy_lambda import endpoints, reach

# The modules a call is checked and routed with: its arguments, names, settings, endpoints,
# the answer's check, errors, and how a request reaches its endpoint.
CHECKS = ("arguments", "names", "settings", "endpoints", "answers", "errors", "reach")

# What none of them needs on the common path, and what needs it instead.
RARE = {
    "base64": "a client context, a log tail, proxy credentials",
    "binascii": "a log tail",
    "random": "a delivery's retry",
    "urllib.parse": "an endpoint URL not in the form scheme://host[:port], a proxy",
    "urllib.request": "a *_proxy variable",
    "botocore": "a shared AWS file, a role to assume, credentials not in the environment",
    "dataclasses": "nothing: plain classes",
    "http.client": "a proxy's answer to CONNECT",
    "ssl": "an https:// endpoint's TLS (its context is made when the route is decided)",
}


def imported_by(modules):
    """The modules a fresh interpreter holds after importing plpy_lambda.<each of modules>."""
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); "
            + "; ".join(f"import plpy_lambda.{name}" for name in modules)
            + "; print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-I", "-c", code, ROOT], capture_output=True, text=True,
                         check=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    return set(json.loads(out.stdout))


def test_the_checks_of_a_call_import_nothing_a_rare_path_needs():
    loaded = imported_by(CHECKS)
    found = {name: why for name, why in RARE.items() if name in loaded}
    assert not found, f"imported by {', '.join(CHECKS)}: {found}"


def test_the_first_call_of_a_new_connection_imports_only_what_it_needs(db):
    """The server's credentials are in its environment, it has no shared AWS file and no
    proxy: botocore, urllib, http.client, dataclasses and the relay's modules stay
    unimported."""
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)"
                      ).fetchone() == (200,)
    notices = []
    db.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary))
    db.execute("DO $$import sys, json; plpy.notice(json.dumps(sorted(sys.modules)))$$ "
               "LANGUAGE plpython3u")
    loaded = set(json.loads(notices[-1]))
    assert "plpy_lambda.sql" in loaded
    never = ("botocore", "urllib", "http", "email", "dataclasses", "argparse",
             "psycopg", "plpy_lambda.relay")
    assert not [name for name in loaded if name in never or name.split(".")[0] in never]


# Endpoint URLs as an operator may write them: mostly the normal form, and what is near it.
PLAIN_HOST = st.text(alphabet="aZ09.-_%", min_size=1, max_size=12)
URL = st.builds(
    lambda scheme, user, host, port, tail: f"{scheme}{user}{host}{port}{tail}",
    st.sampled_from(["http://"] * 4 + ["https://"] * 4 + ["HTTP://", "https:/", "ftp://", ""]),
    st.sampled_from([""] * 8 + ["@", "u@", "u:p@", ":p@"]),
    st.one_of(PLAIN_HOST, PLAIN_HOST, PLAIN_HOST, st.just(""), st.just("[::1]"),
              st.just("[fe80::1%eth0]"), st.text(max_size=6)),
    st.one_of(st.just(""), st.integers(0, 70000).map(lambda n: f":{n}"),
              st.sampled_from([":", ":-1", ":0x1", ": 80", ":\uff18\uff10", ":1:2"])),
    st.sampled_from([""] * 8 + ["/", "/p", "?q", "#f", " ", "\t", "\n"]),
)


@settings(max_examples=3000, deadline=None, derandomize=True, database=None)
@given(URL)
def test_the_endpoint_is_read_as_urlsplit_reads_it(url):
    """endpoints.split reads the normal form (scheme://host[:port]) without urllib.parse;
    what it reads agrees with urlsplit, and what it leaves is left to urlsplit."""
    try:
        parts = urlsplit(url)
        theirs = (parts.scheme, parts.netloc, parts.hostname, parts.port)
    except ValueError:
        theirs = None
    ours = endpoints.split(url)
    if ours is not None:
        assert ours == theirs
        assert (parts.path, parts.query, parts.fragment, parts.username) == ("", "", "", None)
    try:
        assert reach._split(url) == theirs
    except ValueError:
        assert theirs is None
