"""What "make install" and "make dist" leave behind, and a clear error when it is incomplete."""

import glob
import os
import shutil
import subprocess
import zipfile

import psycopg
import pytest

import fixture
from cluster import major
from conftest import ROOT, installing


def sharedir(pg_config="pg_config"):
    return subprocess.run([pg_config, "--sharedir"], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_the_installed_script_names_a_fixed_root_owned_python_directory():
    script = open(os.path.join(sharedir(), "extension", "aws_lambda--1.0.sql")).read()
    assert "@PLPY_LAMBDA_DIR@" not in script
    directory = os.path.join(sharedir(), "aws_lambda", "python")
    assert f'sys.path.insert(0, "{directory}")' in script
    for path in (directory, os.path.join(directory, "plpy_lambda"), os.path.join(directory, "botocore")):
        mode = os.stat(path).st_mode
        assert not mode & 0o022, f"{path} is writable by others"
        if os.geteuid() == 0:
            assert os.stat(path).st_uid == 0


def test_a_missing_package_gives_an_error_that_says_what_to_do(cluster, emulator):
    """aws_lambda_internal._load() imports plpy_lambda from the installed directory. Pointed
    at an empty one (in a database of its own), it shows what a user of an incomplete
    installation sees, from every entry point: LM090 with what to do, and no traceback."""
    directory = os.path.join(sharedir(), "aws_lambda", "python")
    cluster.psql("DROP DATABASE IF EXISTS broken_install; CREATE DATABASE broken_install;", check=True)
    with psycopg.connect(cluster.dsn(dbname="broken_install"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_lambda CASCADE")
        body = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = 'aws_lambda_internal._load'::regproc").fetchone()[0]
        assert directory in body
        conn.execute("CREATE OR REPLACE FUNCTION aws_lambda_internal._load() RETURNS void LANGUAGE plpython3u "
                     "SET search_path = pg_catalog, pg_temp AS $py$"
                     + body.replace(directory, "/nonexistent/aws_lambda/python") + "$py$")
    for statement in ["SELECT * FROM aws_lambda.invoke('simple', '{}'::json)",
                      "SELECT * FROM aws_lambda.invoke('simple', '{}'::jsonb)",
                      "SELECT * FROM aws_lambda.invoke_many('simple', ARRAY['{}']::json[])",
                      "SELECT aws_lambda.invoke_on_commit('simple', '{}'::json, context => '{}'::json)",
                      "CALL aws_lambda.deliver()"]:
        with psycopg.connect(cluster.dsn(dbname="broken_install"), autocommit=True) as conn:
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(statement)
            assert conn.execute("SELECT 1").fetchone() == (1,)  # the session goes on
        diag = caught.value.diag
        assert diag.sqlstate == "LM090", statement
        assert diag.message_primary == 'aws_lambda: the server\'s Python cannot import "plpy_lambda"'
        assert "make install" in diag.message_hint
        assert "Traceback" not in (diag.context or ""), diag.context
    cluster.psql("DROP DATABASE broken_install;", check=True)


def test_make_dist_builds_the_pgxn_archive(tmp_path):
    subprocess.run(["git", "clone", "-q", ROOT, str(tmp_path / "src")], check=True)
    subprocess.run(["make", "-s", "dist"], cwd=tmp_path / "src", check=True,
                   capture_output=True)
    archive = tmp_path / "src" / "aws_lambda-1.0.0.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    for required in ("META.json", "Makefile", "aws_lambda.control", "aws_commons.control",
                     "aws_lambda--1.0.sql", "aws_commons--1.0.sql", "aws_commons--1.0--1.1.sql",
                     "aws_commons--1.1--1.2.sql", "aws_commons--1.2--1.2-full.sql",
                     "aws_commons--1.2-full--1.2.sql", "requirements.txt",
                     "scripts/requirements-for",
                     "plpy_lambda/sql.py", "setup.py", "README.md"):
        assert f"aws_lambda-1.0.0/{required}" in names


def working_tree_copy(destination):
    """The source tree as it is now (tracked and new files, ignored ones left out), copied."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        if os.path.isfile(os.path.join(ROOT, name)):
            os.makedirs(os.path.join(destination, os.path.dirname(name)), exist_ok=True)
            shutil.copy2(os.path.join(ROOT, name), os.path.join(destination, name))
    return destination


def test_one_tree_installs_into_two_majors_each_with_its_own_python_directory(tmp_path, emulator):
    """make install for Debian's packaged PostgreSQL, then make install PG_CONFIG=... for 18
    (built by scripts/postgres), from one fresh copy of the tree: each major's
    aws_lambda--1.0.sql names its own $(datadir)/aws_lambda/python, and each server imports
    plpy_lambda from there."""
    packaged = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_config"),
                      key=lambda path: major(os.path.dirname(path)))
    assert packaged, "no PostgreSQL from Debian's packages (/usr/lib/postgresql/NN)"
    with installing():
        built = subprocess.run([os.path.join(ROOT, "scripts", "postgres"), "18"],  # once: builds
                               capture_output=True, text=True)
    assert built.returncode == 0, f"scripts/postgres 18 could not build it:\n{built.stderr}"
    bin_directories = [os.path.dirname(packaged[-1]), built.stdout.strip().splitlines()[-1]]
    majors = [major(b) for b in bin_directories]
    assert majors[1] == 18 and majors[0] != 18

    tree = working_tree_copy(tmp_path / "src")
    for bin_directory in bin_directories:  # one after the other, from the same tree
        with installing():
            done = subprocess.run(["make", "install", f"PG_CONFIG={bin_directory}/pg_config"],
                                  cwd=tree, capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr

    directories = [os.path.join(sharedir(f"{b}/pg_config"), "aws_lambda", "python")
                   for b in bin_directories]
    for bin_directory, directory, expected_major in zip(bin_directories, directories, majors):
        script = open(os.path.join(sharedir(f"{bin_directory}/pg_config"), "extension",
                                   "aws_lambda--1.0.sql")).read()
        assert f'sys.path.insert(0, "{directory}")' in script
        assert not [other for other in directories if other != directory and other in script]

        pg = fixture.cluster(emulator.url, bin_directory=bin_directory)
        try:
            with psycopg.connect(pg.dsn(), autocommit=True) as conn:
                assert int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000 \
                    == expected_major
                assert conn.execute(
                    "SELECT status_code FROM aws_lambda.invoke('simple', '{}'::json)"
                ).fetchone() == (200,)
                conn.execute("CREATE FUNCTION imported_from() RETURNS text LANGUAGE plpython3u "
                             "AS $py$import sys; return sys.modules['plpy_lambda'].__file__$py$")
                imported = conn.execute("SELECT imported_from()").fetchone()[0]
        finally:
            pg.stop()
        assert imported == os.path.join(directory, "plpy_lambda", "__init__.py")
