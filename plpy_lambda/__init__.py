"""plpy_lambda: the Python side of the aws_lambda and aws_commons extensions.

The SQL functions of aws_lambda--1.0.sql hand plpy, GD and their arguments to
plpy_lambda.sql. Modules: names (function names, ARNs, regions), arguments
(the invoke arguments), settings (GUCs and who may set them), credentials,
client (the signed HTTP call), interrupts (cancellation), invoke (one call),
errors (every failure and its SQLSTATE), backend (per-connection state),
emulator (the local Lambda endpoint).
"""

__version__ = "1.0.0"
