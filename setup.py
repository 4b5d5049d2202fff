"""plpy_lambda: the Python side of the aws_lambda PostgreSQL extension (with its relay), and
lambda_emulator, the local Lambda endpoint for development and tests (plpy-lambda-emulator).
The extension itself is installed with "make install", which puts plpy_lambda alone (and
botocore) where the server's Python finds it."""

from setuptools import find_packages, setup

setup(
    name="plpy_lambda",
    version="1.0.0",
    description="AWS Lambda from PostgreSQL: the Python side of the aws_lambda extension",
    packages=find_packages(include=["plpy_lambda", "plpy_lambda.*", "lambda_emulator"]),
    python_requires=">=3.9",
    install_requires=["botocore"],
    # plpy-lambda-relay: pip install .[relay] (requirements-relay.txt pins the same)
    extras_require={"relay": ["psycopg[binary]>=3.1", "prometheus_client>=0.17"]},
    entry_points={"console_scripts": [
        "plpy-lambda-emulator = lambda_emulator.__main__:main",
        "plpy-lambda-relay = plpy_lambda.relay:main",
    ]},
    license="PostgreSQL",
)
