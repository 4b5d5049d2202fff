"""Raises as the event says, for testing long function errors and their logs.

Event: ``size`` (10): the error message is that many characters of ``char`` ("x");
``lines`` (3): that many numbered log lines are printed first, each ending in
``log_char`` ("") repeated ``log_width`` (1) times.
"""


def handler(event, context):
    tail = str(event.get("log_char", "")) * int(event.get("log_width", 1))
    for n in range(1, int(event.get("lines", 3)) + 1):
        print(f"raises: log line {n} {tail}")
    raise ValueError(str(event.get("char", "x")) * int(event.get("size", 10)))
