"""The function the RDS guide calls "my-function": the guide's simple Python example."""
import json


def handler(event, context):
    print(f"my-function got {json.dumps(event)}")
    return {'statusCode': 200, 'body': json.dumps('Hello from Lambda!')}
