"""Does nothing and returns {}: for measuring the cost of the call itself."""


def handler(event, context):
    return {}
