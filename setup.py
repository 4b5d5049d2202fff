"""plpy_lambda: the Python side of the aws_lambda PostgreSQL extension, and the local
Lambda endpoint (plpy-lambda-emulator). The extension itself is installed with
"make install", which puts this package where the server's Python finds it."""

from setuptools import find_packages, setup

setup(
    name="plpy_lambda",
    version="1.0.0",
    description="AWS Lambda from PostgreSQL: the Python side of the aws_lambda extension",
    packages=find_packages(include=["plpy_lambda", "plpy_lambda.*"]),
    python_requires=">=3.9",
    install_requires=["boto3", "botocore"],
    extras_require={"relay": ["psycopg[binary]>=3.1"]},  # plpy-lambda-relay: pip install .[relay]
    entry_points={"console_scripts": [
        "plpy-lambda-emulator = plpy_lambda.emulator.__main__:main",
        "plpy-lambda-relay = plpy_lambda.relay:main",
    ]},
    license="PostgreSQL",
)
