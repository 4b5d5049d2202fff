"""What "make install" and "make dist" leave behind, and a clear error when it is incomplete."""

import os
import subprocess
import zipfile

import psycopg
import pytest

from conftest import ROOT


def sharedir():
    return subprocess.run(["pg_config", "--sharedir"], capture_output=True, text=True,
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


def test_a_missing_package_gives_an_error_that_says_what_to_do(cluster):
    """aws_lambda_internal._load() imports plpy_lambda from the installed directory; a copy of it
    pointed at an empty one shows what a user of an incomplete installation sees."""
    directory = os.path.join(sharedir(), "aws_lambda", "python")
    with psycopg.connect(cluster.dsn(), autocommit=True) as conn:
        body = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = 'aws_lambda_internal._load'::regproc").fetchone()[0]
        assert directory in body
        conn.execute("DROP SCHEMA IF EXISTS broken CASCADE")
        conn.execute("CREATE SCHEMA broken")
        conn.execute("CREATE FUNCTION broken.load() RETURNS void LANGUAGE plpython3u AS $py$"
                     + body.replace(directory, "/nonexistent/aws_lambda/python") + "$py$")
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("SELECT broken.load()")
        conn.execute("DROP SCHEMA broken CASCADE")
    diag = caught.value.diag
    assert diag.sqlstate == "LM090"
    assert 'cannot import "plpy_lambda"' in diag.message_primary
    assert "make install" in diag.message_hint


def test_make_dist_builds_the_pgxn_archive(tmp_path):
    subprocess.run(["git", "clone", "-q", ROOT, str(tmp_path / "src")], check=True)
    subprocess.run(["make", "-s", "dist"], cwd=tmp_path / "src", check=True,
                   capture_output=True)
    archive = tmp_path / "src" / "aws_lambda-1.0.0.zip"
    names = set(zipfile.ZipFile(archive).namelist())
    for required in ("META.json", "Makefile", "aws_lambda.control", "aws_commons.control",
                     "aws_lambda--1.0.sql", "aws_commons--1.0.sql", "aws_commons--1.0--1.1.sql",
                     "aws_commons--1.1--1.2.sql", "requirements.txt",
                     "scripts/requirements-for",
                     "plpy_lambda/sql.py", "setup.py", "README.md"):
        assert f"aws_lambda-1.0.0/{required}" in names
