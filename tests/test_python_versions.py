"""The server's Python may be 3.9 to 3.13, and "make install" may have no package registry.

Static checks, which need no other Python: every module of plpy_lambda parses as 3.9,
no annotation evaluated at run time uses `X | Y` (3.10) without `from __future__ import
annotations`, no `|` union of types elsewhere, no 3.10+ builtin, and vermin finds no
standard-library use newer than 3.9.

Wheelhouses: "make wheelhouse" collects exactly the pinned wheels for the server's Python,
for 3.9 and for 3.13 (the registry is needed there), and "make install-python WHEELHOUSE=dir"
installs from one with every registry out of reach.

Real interpreters: where a Python 3.9 or 3.13 is found (pythonX.Y on PATH, or a pyenv
version), plpy_lambda is installed for it from its wheelhouse offline, every module is
imported, the emulator serves a signed call from its boto3, and the relay delivers
against the test cluster. Without one those tests skip; the static checks still run.
"""

import ast
import os
import pathlib
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import psycopg
import pytest

from conftest import ACCESS_KEY, FUNCTIONS, REGION, ROOT, SECRET_KEY, installing

PACKAGE = pathlib.Path(ROOT) / "plpy_lambda"
EMULATOR = pathlib.Path(ROOT) / "lambda_emulator"  # runs on the same Pythons (the 3.9 test below)
OLDEST = (3, 9)
VERSIONS = ["3.9", "3.13"]
# Builtins that 3.9 does not have (vermin does not check these names).
NEW_BUILTINS = {"aiter": "3.10", "anext": "3.10", "EncodingWarning": "3.10",
                "ExceptionGroup": "3.11", "BaseExceptionGroup": "3.11",
                "PythonFinalizationError": "3.13"}
BUILTIN_TYPES = {"int", "str", "bytes", "bytearray", "float", "complex", "bool", "list", "dict",
                 "set", "frozenset", "tuple", "type", "object", "memoryview", "range"}


def modules(packages=(PACKAGE, EMULATOR)):
    return sorted(path for package in packages for path in package.rglob("*.py"))


def relative(path):
    return str(path.relative_to(ROOT))


# --- static checks --------------------------------------------------------------------------

def has_future_annotations(tree):
    return any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(alias.name == "annotations" for alias in node.names)
               for node in tree.body)


def runtime_annotations(tree):
    """Annotations that Python 3.9 evaluates when the code runs (no __future__ import):
    a def's parameters and return, and variable annotations outside function bodies."""
    def visit(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                arguments = child.args
                for argument in (arguments.posonlyargs + arguments.args + arguments.kwonlyargs
                                 + [a for a in (arguments.vararg, arguments.kwarg) if a]):
                    if argument.annotation is not None:
                        yield argument.annotation
                if child.returns is not None:
                    yield child.returns
                yield from visit(child, True)
            elif isinstance(child, ast.AnnAssign):
                if not in_function:
                    yield child.annotation
            elif isinstance(child, ast.Lambda):
                yield from visit(child, True)
            else:
                yield from visit(child, in_function if not isinstance(child, ast.ClassDef) else False)
    yield from visit(tree, False)


def is_union(node):
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)


def looks_like_a_type(node):
    return ((isinstance(node, ast.Constant) and node.value is None)
            or (isinstance(node, ast.Name) and node.id in BUILTIN_TYPES)
            or (isinstance(node, ast.Subscript) and looks_like_a_type(node.value))
            or (is_union(node) and (looks_like_a_type(node.left) or looks_like_a_type(node.right))))


def annotation_nodes(tree):
    """Every node inside any annotation (those are checked by the annotation rule)."""
    inside = set()
    for node in ast.walk(tree):
        found = []
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            arguments = node.args
            found = [a.annotation for a in (arguments.posonlyargs + arguments.args
                                            + arguments.kwonlyargs
                                            + [a for a in (arguments.vararg, arguments.kwarg) if a])]
            found.append(node.returns)
        elif isinstance(node, (ast.AnnAssign, ast.arg)):
            found = [node.annotation]
        for annotation in filter(None, found):
            inside.update(id(n) for n in ast.walk(annotation))
    return inside


def problems_for_python_3_9(source, filename):
    """What keeps source from importing and running on Python 3.9, as "file:line: what"."""
    try:
        tree = ast.parse(source, filename, feature_version=OLDEST)
    except SyntaxError as error:
        return [f"{filename}:{error.lineno}: not Python 3.9 syntax: {error.msg}"]
    found = []
    if not has_future_annotations(tree):
        for annotation in runtime_annotations(tree):
            for node in ast.walk(annotation):
                if is_union(node):
                    found.append(f"{filename}:{node.lineno}: `X | Y` in an annotation that 3.9 "
                                 "evaluates: add `from __future__ import annotations`")
                    break
    in_annotations = annotation_nodes(tree)
    assigned = {node.id for node in ast.walk(tree)
                if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
    assigned |= {node.name for node in ast.walk(tree)
                 if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
    for node in ast.walk(tree):
        if id(node) in in_annotations:
            continue
        if is_union(node) and (looks_like_a_type(node.left) or looks_like_a_type(node.right)):
            found.append(f"{filename}:{node.lineno}: `|` union of types evaluated at run time "
                         "(3.10): use a tuple or typing.Optional/Union")
        if (isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)
                and node.id in NEW_BUILTINS and node.id not in assigned):
            found.append(f"{filename}:{node.lineno}: builtin {node.id} is new in "
                         f"{NEW_BUILTINS[node.id]}")
    return sorted(set(found))


def test_the_check_finds_what_3_9_cannot_run():
    """The checker itself, on snippets that fail on 3.9 and on ones that do not."""
    bad = {
        "def f(a: int | None = None): pass": "annotation",
        "def f() -> 'x' | None: pass": "annotation",
        "class C:\n    x: str | None = None": "annotation",
        "x: dict[str, int] | None = None": "annotation",
        "isinstance(1, int | str)": "union of types",
        "Alias = list[int] | None": "union of types",
        "match x:\n    case 1: pass": "syntax",
        "try:\n    pass\nexcept* ValueError:\n    pass": "syntax",
        "x = anext(it)": "builtin anext",
    }
    for source, what in bad.items():
        found = problems_for_python_3_9(source, "t.py")
        assert found and what in found[0], (source, found)
    good = [
        "from __future__ import annotations\ndef f(a: int | None = None) -> str | None: pass",
        "from __future__ import annotations\nclass C:\n    x: str | None = None",
        "def f():\n    x: int | None = None\n    return x",
        "flags = 1 | 2\nmerged = {'a': 1} | {'b': 2}\ns = set() | {1}",
        "x: 'int | None' = None",
        "def anext(it): pass\nanext(1)",
    ]
    for source in good:
        assert problems_for_python_3_9(source, "t.py") == [], source


def plpython_bodies():
    """{"file.sql:line": source} of every LANGUAGE plpython3u function body in the extension's
    scripts, as a module PL/Python would compile (it wraps the body in a def)."""
    bodies = {}
    for path in sorted(pathlib.Path(ROOT).glob("*.sql")):
        text = path.read_text()
        for match in re.finditer(r"LANGUAGE plpython3u\b.*?\bAS (\$\w*\$)\n(.*?)\1", text, re.S):
            line = text.count("\n", 0, match.start(2)) + 1
            body = "".join(f"    {row}" if row.strip() else row
                           for row in match.group(2).splitlines(keepends=True))
            bodies[f"{path.name}:{line}"] = f"def plpython_function():\n{body}    pass\n"
    return bodies


def test_every_module_can_run_on_python_3_9():
    found = []
    for path in modules():
        found += problems_for_python_3_9(path.read_text(), relative(path))
    assert not found, "\n".join(found)


def test_every_plpython_function_body_can_run_on_python_3_9():
    bodies = plpython_bodies()
    assert len(bodies) >= 4
    found = []
    for name, source in bodies.items():
        found += problems_for_python_3_9(source, name)
    assert not found, "\n".join(found)


def test_vermin_finds_no_standard_library_use_newer_than_3_9(tmp_path):
    """vermin knows which standard-library modules, members and keyword arguments each
    version added (zip(strict=), int.bit_count, dataclass(slots=), tomllib, ...)."""
    targets = [relative(path) for path in modules()] + ["setup.py", "scripts/requirements-for"]
    for number, (name, source) in enumerate(plpython_bodies().items()):
        body = tmp_path / f"plpython_body_{number}.py"
        body.write_text(f"# {name}\n{source}")
        targets.append(str(body))
    out = subprocess.run(
        [sys.executable, "-c", "import sys, vermin; sys.exit(vermin.main())", "--no-tips", "--violations", "--target=3.9-",
         "--no-make-paths-absolute", *targets],
        cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_setup_py_allows_python_3_9():
    tree = ast.parse((pathlib.Path(ROOT) / "setup.py").read_text())
    requires = [keyword.value.value for node in ast.walk(tree) if isinstance(node, ast.Call)
                for keyword in node.keywords if keyword.arg == "python_requires"]
    assert requires == [">=3.9"]


# --- wheelhouses and offline installs -------------------------------------------------------

def canonical(name):
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(version):
    """{package: version} that requirements.txt pins for Python `version`."""
    out = subprocess.run([sys.executable, "scripts/requirements-for", version, "requirements.txt"],
                         cwd=ROOT, capture_output=True, text=True, check=True)
    return {canonical(name): pinned for name, _, pinned in
            (line.partition("==") for line in out.stdout.split())}


def dev_pins(version):
    """{package: version} that requirements-dev.txt pins for Python `version`, beyond
    requirements.txt's (its "-r" line left out)."""
    with tempfile.NamedTemporaryFile("w", suffix=".txt") as own:
        own.write("".join(line for line in open(os.path.join(ROOT, "requirements-dev.txt"))
                          if not line.startswith("-r ")))
        own.flush()
        out = subprocess.run([sys.executable, "scripts/requirements-for", version, own.name],
                             cwd=ROOT, capture_output=True, text=True, check=True)
    return {canonical(name): pinned for name, _, pinned in
            (line.partition("==") for line in out.stdout.split())}


def wheels(directory):
    """{package: version} of the wheels in directory."""
    found = {}
    for path in pathlib.Path(directory).glob("*.whl"):
        name, version = path.name.split("-")[:2]
        found[canonical(name)] = version
    return found


def make(*arguments, env=None):
    with installing():
        return _make(*arguments, env=env)


def _make(*arguments, env=None):
    return subprocess.run(["make", "--no-print-directory", "-C", ROOT, *arguments],
                          capture_output=True, text=True, env=env)


def offline_env():
    """An environment in which pip can reach no registry and reads no configuration: only
    --find-links given on its command line can supply anything."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith("PIP_") and name.lower() not in
           ("http_proxy", "https_proxy", "all_proxy", "no_proxy")}
    nowhere = "http://127.0.0.1:9"
    env.update(PIP_CONFIG_FILE=os.devnull, PIP_INDEX_URL=f"{nowhere}/simple/", PIP_RETRIES="0",
               PIP_TIMEOUT="2", HTTP_PROXY=nowhere, HTTPS_PROXY=nowhere, http_proxy=nowhere,
               https_proxy=nowhere)
    return env


def find_python(version):
    """A working pythonX.Y: on PATH, else the newest pyenv version X.Y.N; None if neither."""
    candidates = [shutil.which(f"python{version}")]
    pyenv = shutil.which("pyenv")
    if pyenv:
        listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True)
        found = [v for v in listed.stdout.split() if re.fullmatch(rf"{re.escape(version)}\.\d+", v)]
        for candidate in sorted(found, key=lambda v: int(v.split(".")[2]), reverse=True):
            prefix = subprocess.run([pyenv, "prefix", candidate], capture_output=True, text=True)
            candidates.append(os.path.join(prefix.stdout.strip(), "bin", f"python{version}"))
    for candidate in filter(None, candidates):
        try:
            out = subprocess.run([candidate, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                 capture_output=True, text=True, timeout=30)
        except OSError:
            continue
        if out.returncode == 0 and out.stdout.strip() == version:
            return candidate
    return None


@pytest.fixture(scope="module")
def wheelhouse(tmp_path_factory):
    """wheelhouse(version) builds (once) the wheelhouse for Python version, or for the
    server's with None, and returns its directory."""
    built = {}

    def build(version=None):
        if version not in built:
            directory = tmp_path_factory.mktemp(f"wheelhouse-{version or 'server'}")
            arguments = ["wheelhouse", f"WHEELHOUSE={directory}"]
            if version:
                # Another version's wheels need no PostgreSQL: no pg_config here.
                arguments += [f"WHEELHOUSE_PYTHON_VERSION={version}",
                              f"WHEELHOUSE_PIP_PYTHON={sys.executable}",
                              "PG_CONFIG=/nonexistent/pg_config"]
            out = make(*arguments)
            assert out.returncode == 0, out.stdout + out.stderr
            built[version] = directory
        return built[version]

    return build


def server_python_version():
    out = subprocess.run(["scripts/server-python"], cwd=ROOT, capture_output=True, text=True,
                         check=True)
    python = out.stdout.strip()
    return subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                          capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("version", VERSIONS)
def test_the_pins_resolve_for_python(version, wheelhouse):
    """pip download --python-version resolves the pins (with their dependencies) and
    fetches exactly them: requirements.txt lists everything, for each version."""
    assert wheels(wheelhouse(version)) == pins(version)


@pytest.mark.parametrize("version", VERSIONS)
def test_the_relays_pins_resolve_for_python(version, tmp_path):
    """requirements-relay.txt (the relay's own environment, never the server's) resolves for
    each version, as wheels, to the versions it pins."""
    pinned = subprocess.run([sys.executable, "scripts/requirements-for", version, "requirements-relay.txt"],
                            cwd=ROOT, capture_output=True, text=True, check=True).stdout
    (tmp_path / "relay.txt").write_text(pinned)
    out = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                          "--only-binary=:all:", "--python-version", version, "-d", str(tmp_path / "wheels"),
                          "-r", str(tmp_path / "relay.txt")], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
    fetched = wheels(tmp_path / "wheels")
    for line in pinned.split():
        name, _, version_pinned = line.partition("==")
        assert fetched[canonical(name.partition("[")[0])] == version_pinned, (line, fetched)


def test_make_install_from_a_wheelhouse_reaches_no_registry(wheelhouse, tmp_path):
    directory = wheelhouse()
    assert wheels(directory) == pins(server_python_version())

    # With nothing in the wheelhouse the install fails: nothing else could supply a package.
    empty = tmp_path / "empty"
    empty.mkdir()
    out = make("install-python", f"PLPY_LAMBDA_DIR={tmp_path / 'nothing'}",
               f"WHEELHOUSE={empty}", env=offline_env())
    assert out.returncode != 0
    assert "No matching distribution found for" in out.stdout + out.stderr

    target = tmp_path / "python"
    out = make("install-python", f"PLPY_LAMBDA_DIR={target}", f"WHEELHOUSE={directory}",
               env=offline_env())
    assert out.returncode == 0, out.stdout + out.stderr
    python = subprocess.run(["scripts/server-python"], cwd=ROOT, capture_output=True, text=True,
                            check=True).stdout.strip()
    out = subprocess.run(
        [python, "-I", "-c", "import sys; sys.path.insert(0, sys.argv[1]); "
         "import importlib.util, plpy_lambda.sql, botocore; "
         "print(plpy_lambda.sql.__file__, botocore.__version__, "
         "importlib.util.find_spec('boto3') is None, importlib.util.find_spec('lambda_emulator') is None)",
         str(target)],
        capture_output=True, text=True, check=True)
    where, botocore_version, no_boto3, no_emulator = out.stdout.split()
    assert where.startswith(str(target))
    assert botocore_version == pins(server_python_version())["botocore"]
    assert (no_boto3, no_emulator) == ("True", "True")  # the server install holds only what it runs


def wait_for_file(path, process, timeout=30):
    end = time.monotonic() + timeout
    while not (os.path.exists(path) and open(path).read().strip()):
        assert process.poll() is None, "the process exited"
        assert time.monotonic() < end, f"no {path} after {timeout} s"
        time.sleep(0.05)
    return open(path).read().strip()


@pytest.mark.parametrize("version", VERSIONS)
def test_installs_and_runs_on_python(version, wheelhouse, tmp_path, cluster, emulator):
    python = find_python(version)
    if python is None:
        pytest.skip(f"no Python {version} here (python{version} on PATH or a pyenv version)")
    target = tmp_path / "python"
    out = make("install-python", f"PYTHON={python}", f"PLPY_LAMBDA_DIR={target}",
               f"WHEELHOUSE={wheelhouse(version)}", env=offline_env())
    assert out.returncode == 0, out.stdout + out.stderr

    # The relay's one dependency (setup.py's extra), and boto3 for the emulator's client, for
    # this Python, from the registry, as requirements-dev.txt pins it.
    relay_deps = tmp_path / "relay-deps"
    out = subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                          "--target", str(relay_deps), "psycopg[binary]>=3.1",
                          f"boto3=={dev_pins(version)['boto3']}"],
                         capture_output=True, text=True, env={**os.environ,
                                                              "PIP_ROOT_USER_ACTION": "ignore"})
    assert out.returncode == 0, out.stdout + out.stderr
    env = {"PATH": os.environ["PATH"], "LANG": "C.UTF-8", "HOME": str(tmp_path),
           "PYTHONPATH": os.pathsep.join([str(target), str(relay_deps), ROOT]), "PYTHONDONTWRITEBYTECODE": "1"}

    out = subprocess.run([python, "-c", """
import importlib, pkgutil, sys
import plpy_lambda
names = [m.name for m in pkgutil.walk_packages(plpy_lambda.__path__, "plpy_lambda.")]
for name in names:
    importlib.import_module(name)
print(len(names), "%d.%d" % sys.version_info[:2])
"""], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    count, ran_on = out.stdout.split()
    assert ran_on == version and int(count) == len(modules([PACKAGE])) - 1  # __init__ is the package

    # The emulator on this Python, called through its boto3 with a SigV4 signature.
    port_file = tmp_path / "port"
    server = subprocess.Popen(
        [python, "-m", "lambda_emulator", "--functions", FUNCTIONS, "--port", "0",
         "--port-file", str(port_file), "--credentials", f"{ACCESS_KEY}:{SECRET_KEY}", "--quiet"],
        env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        port = wait_for_file(port_file, server)
        out = subprocess.run([python, "-c", f"""
import boto3, json

client = boto3.client("lambda", endpoint_url="http://127.0.0.1:{port}", region_name="{REGION}",
                      aws_access_key_id="{ACCESS_KEY}", aws_secret_access_key="{SECRET_KEY}")
response = client.invoke(FunctionName="echo", Payload=b'{{"on": "python"}}')
print(json.dumps(json.loads(response["Payload"].read())["event"]))
"""], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == '{"on": "python"}'
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0

    # The relay on this Python delivers what invoke_on_commit queued in the test cluster.
    emulator.reset()
    with psycopg.connect(cluster.dsn(), autocommit=True) as db:
        db.execute("DELETE FROM aws_lambda.deliveries")
        log_path = tmp_path / "relay.log"
        with open(log_path, "w") as log:
            relay = subprocess.Popen([python, "-m", "plpy_lambda.relay", "--dsn", cluster.dsn()],
                                     env=env, cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT)
        try:
            db.execute("SELECT aws_lambda.invoke_on_commit('echo', '{\"relay\": 1}'::json)")
            end = time.monotonic() + 30
            while emulator.invocations("echo") < 1:
                assert relay.poll() is None, log_path.read_text()
                assert time.monotonic() < end, log_path.read_text()
                time.sleep(0.05)
        finally:
            relay.send_signal(signal.SIGTERM)
            assert relay.wait(30) == 0, log_path.read_text()
            db.execute("DELETE FROM aws_lambda.deliveries")
    assert "listening on aws_lambda_deliveries" in log_path.read_text()
