"""The RDS guide's example function: a fixed greeting."""
import json


def handler(event, context):
    print(f"simple got {json.dumps(event)}")
    return {'statusCode': 200, 'body': json.dumps('Hello from Lambda!')}
