"""Published version 1 of my-function (alias custom_version, see my-function.json)."""
import json


def handler(event, context):
    print(f"my-function version 1 got {json.dumps(event)}")
    return {'statusCode': 200, 'body': json.dumps('Hello from Lambda version 1!')}
