"""plpy_lambda: the Python side of the aws_lambda and aws_commons extensions.

The SQL functions of aws_lambda--1.0.sql hand plpy, GD and their arguments to
plpy_lambda.sql (the entry points). Modules: names (function names, ARNs, regions),
arguments (the invoke arguments), settings (GUCs and who may set them), credentials,
endpoints (the endpoint URL, as the AWS SDK resolves it), reach (the connection: proxy
and TLS trust), client (the signed HTTP exchange), interrupts (waiting without missing
a cancel), invoke (one call), answers (the function's answer checked for json/jsonb,
the log tail), batch (many calls at once), delivery (commit-time delivery), errors
(every failure and its SQLSTATE), backend (per-connection state), sigv4 (signing).
Outside the server: relay (runs CALL aws_lambda.deliver()). The local Lambda endpoint
of the tests is a package of its own, lambda_emulator.

A new connection pays for every import again (PL/Python starts a new interpreter in
each backend), so a module imports what only a rare path needs where that path is.
"""

__version__ = "1.0.0"
