"""The SQL surface is written once and guarded: aws_lambda--1.0.sql is generated from
sql/aws_lambda.sql, and what CREATE EXTENSION makes of it matches
tests/expected/<major>/aws_lambda.txt for the server's PostgreSQL major (every function's
signature, volatility, security, settings, owner and grants; the log's columns, indexes and
policy; psql's \\dx+). After a deliberate change: UPDATE_EXPECTED=1, on each major."""

import os
import subprocess
import sys

import psycopg
import pytest

import catalog
from conftest import ROOT


def test_regenerating_the_install_script_changes_nothing():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "generate-sql"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


@pytest.fixture
def fresh_database(cluster):
    cluster.psql("DROP DATABASE IF EXISTS aws_lambda_surface", check=True)
    cluster.psql("CREATE DATABASE aws_lambda_surface", check=True)
    with psycopg.connect(cluster.dsn(dbname="aws_lambda_surface"), autocommit=True) as conn:
        conn.execute("CREATE EXTENSION aws_lambda CASCADE")
    yield "aws_lambda_surface"
    cluster.psql("DROP DATABASE IF EXISTS aws_lambda_surface", check=True)


def test_the_catalog_is_the_expected_one(cluster, fresh_database):
    actual = catalog.snapshot(cluster, fresh_database, "aws_lambda")
    assert actual == catalog.expected(cluster, "aws_lambda", actual)
