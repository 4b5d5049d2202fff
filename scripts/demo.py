"""The main job: the RDS guide's example invocation, on a throwaway cluster.

Starts the local Lambda endpoint with the example functions and a throwaway
PostgreSQL cluster pointed at it (scripts/fixture.py: the operator's configuration
in postgresql.conf, the credentials and region in the server's environment), runs
CREATE EXTENSION and the guide's example through psql, and prints what psql prints.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fixture  # noqa: E402

STATEMENTS = [
    "CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;",
    "SELECT * from aws_lambda.invoke(aws_commons.create_lambda_function_arn("
    "'arn:aws:lambda:us-west-1:444455556666:function:simple', 'us-west-1'), "
    "'{\"body\": \"Hello from Postgres!\"}'::json );",
]


def main():
    with fixture.running(extension=False) as (endpoint, cluster):
        print(f"Lambda endpoint {endpoint.url}; PostgreSQL on port {cluster.port}", file=sys.stderr)
        for statement in STATEMENTS:
            print(f"postgres=> {statement}")
            print(cluster.psql(statement), end="")


if __name__ == "__main__":
    main()
