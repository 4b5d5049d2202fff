"""A new connection's first call imports only what it needs (docs/performance.md).

PL/Python starts a new interpreter in each backend, so every module plpy_lambda imports
is paid for again by the first call of every connection. What only a rare path needs
(a client context, log_type => 'Tail', a proxy, a configured endpoint URL, a shared AWS
file, a retried delivery) is imported where it is used, and these tests keep it so: in
a fresh interpreter (-I, nothing of this environment's) for the modules, and in a new
backend for the first call itself.
"""

import base64
import os
import subprocess
import sys
from urllib.parse import urlsplit

import psycopg
import pytest
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
    # The standard library's heavier modules: re imports enum, and json imports re;
    # threading and signal import enum, functools and collections.
    "json": "a client context, the reason an answer is refused, the service's error message",
    "re": "a jsonb answer's number and \\u checks, the reason an answer is refused, an "
          "operator setting with a unit, a role ARN, a proxy's message",
    "enum": "nothing of ours (re, signal)",
    "threading": "nothing: _thread",
    "signal": "nothing: _signal",
    "collections": "nothing: plain classes",
    "hashlib": "a payload of sigv4.PAYLOAD_OPENSSL bytes or more (OpenSSL's SHA-256)",
    "hmac": "nothing: sigv4's own HMAC",
    "struct": "nothing: int.from_bytes",
    "unicodedata": "the hint of a name that is not ASCII",
    "heapq": "invoke_many's timers",
    "plpy_lambda.batch": "invoke_many, deliver()",
    "plpy_lambda.delivery": "invoke_on_commit and deliver()",
    "plpy_lambda.calllog": "aws_lambda.log_min_duration or aws_lambda.log_failures set",
}


def imported_by(modules):
    """The modules a fresh interpreter holds after importing plpy_lambda.<each of modules>."""
    code = ("import sys; sys.path.insert(0, sys.argv[1]); "
            + "; ".join(f"import plpy_lambda.{name}" for name in modules)
            + "; print(' '.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-I", "-c", code, ROOT], capture_output=True, text=True,
                         check=True, env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    return set(out.stdout.split())


def test_the_checks_of_a_call_import_nothing_a_rare_path_needs():
    loaded = imported_by(CHECKS)
    found = {name: why for name, why in RARE.items() if name in loaded}
    assert not found, f"imported by {', '.join(CHECKS)}: {found}"


def modules_of(db):
    """The modules the backend's Python holds (listed without importing anything)."""
    notices = []
    db.add_notice_handler(lambda diagnostic: notices.append(diagnostic.message_primary))
    db.execute("DO $$import sys; plpy.notice(' '.join(sorted(sys.modules)))$$ LANGUAGE plpython3u")
    return set(notices[-1].split())


def test_the_first_call_of_a_new_connection_imports_only_what_it_needs(db):
    """The server's credentials are in its environment, it has no shared AWS file and no
    proxy, the answer is JSON and the payload small: of RARE, of the relay's modules and of
    what they import, the first invoke imports nothing."""
    before = modules_of(db)
    assert db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)"
                      ).fetchone() == (200,)
    added = modules_of(db) - before
    assert "plpy_lambda.sql" in added
    never = set(RARE) | {"http", "email", "argparse", "logging", "psycopg", "plpy_lambda.relay"}
    assert not sorted(name for name in added
                      if name in never or name.split(".")[0] in never), sorted(added)


def test_what_a_first_call_did_not_import_comes_when_needed(db, emulator):
    """The imports left for later come with the call that needs them: a jsonb answer is
    checked with re, a refused one explained with json, a large payload hashed by OpenSSL."""
    before = modules_of(db)
    db.execute("SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)")
    assert not {"re", "json", "hashlib"} & (modules_of(db) - before)
    db.execute("SELECT payload FROM aws_lambda.invoke('simple', '{\"n\": 1e5}'::jsonb)")
    assert "re" in modules_of(db)
    db.execute("SELECT status_code FROM aws_lambda.invoke('simple', "
               "json_build_object('pad', repeat('x', 2000)))")
    assert "hashlib" in modules_of(db)
    emulator.set_fault("simple", "raw", count=1, body_base64=base64.b64encode(b"not json").decode())
    with pytest.raises(psycopg.Error) as caught:
        db.execute("SELECT * FROM aws_lambda.invoke('simple', '{}'::json)")
    assert caught.value.sqlstate == "LM005"
    assert "json" in modules_of(db)


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
