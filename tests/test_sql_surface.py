"""The SQL surface is written once: aws_lambda--1.0.sql is generated from sql/aws_lambda.sql."""

import os
import subprocess
import sys

from conftest import ROOT


def test_regenerating_the_install_script_changes_nothing():
    done = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "generate-sql"), "--check"],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
