"""Published version 1 of simple (alias custom_version, see simple.json)."""
import json


def handler(event, context):
    print(f"simple version 1 got {json.dumps(event)}")
    return {'statusCode': 200, 'body': json.dumps('Hello from Lambda version 1!')}
