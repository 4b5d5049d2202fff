"""The main job: the RDS guide's example invocation, on a throwaway cluster.

Starts the local Lambda endpoint with the example functions, a throwaway
PostgreSQL cluster whose operator configuration points aws_lambda at it (and
whose environment holds the credentials and region, as a server's would), runs
CREATE EXTENSION and the guide's example through psql, and prints what psql prints.
"""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from cluster import Cluster  # noqa: E402
from lambda_emulator import Emulator  # noqa: E402

FUNCTIONS = os.path.join(ROOT, "examples", "functions")
ACCESS_KEY, SECRET_KEY = "AKIADEMO000000000000", "demo-secret-key"
REGION = "us-west-1"

STATEMENTS = [
    "CREATE EXTENSION IF NOT EXISTS aws_lambda CASCADE;",
    "SELECT * from aws_lambda.invoke(aws_commons.create_lambda_function_arn("
    "'arn:aws:lambda:us-west-1:444455556666:function:simple', 'us-west-1'), "
    "'{\"body\": \"Hello from Postgres!\"}'::json );",
]


def main():
    with Emulator(FUNCTIONS, region=REGION, account_id="444455556666",
                  credentials={ACCESS_KEY: SECRET_KEY}) as emulator:
        cluster = Cluster(
            conf={"aws_lambda.endpoint_override": f"'{emulator.url}'"},
            env={
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true",
            },
        )
        print(f"Lambda endpoint {emulator.url}; PostgreSQL on port {cluster.port}", file=sys.stderr)
        cluster.start()
        try:
            for statement in STATEMENTS:
                print(f"postgres=> {statement}")
                print(cluster.psql(statement), end="")
        finally:
            cluster.stop()


if __name__ == "__main__":
    main()
