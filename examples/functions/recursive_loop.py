"""Stands for a function Lambda stopped for a recursive loop: every call is answered
400 RecursiveInvocationException (an Invoke error, not a function error)."""
from lambda_emulator import InvokeError


def handler(event, context):
    raise InvokeError("RecursiveInvocationException")
