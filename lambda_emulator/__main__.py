"""Command line: run the emulator in the foreground until SIGTERM or SIGINT.

    python3 -m lambda_emulator --functions DIR [--host 127.0.0.1] [--port 9001]
        [--region us-east-1] [--account-id 123456789012] [--credentials AKID:SECRET ...]
        [--assume-role-duration 3600] [--port-file FILE] [--quiet]

Prints one line, ``plpy_lambda emulator listening on http://HOST:PORT``, once it
accepts connections. ``--port 0`` picks a free port; ``--port-file`` receives it
(written atomically).
"""

import argparse
import os
import signal
import sys
import threading

from .core import Emulator


def _credential(text):
    access_key, sep, secret = text.partition(":")
    if not sep or not access_key or not secret:
        raise argparse.ArgumentTypeError("expected ACCESS_KEY_ID:SECRET_ACCESS_KEY")
    return access_key, secret


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python3 -m lambda_emulator", description=__doc__.split("\n")[0])
    parser.add_argument("--functions", required=True, help="directory of NAME.py handler files")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9001, help="0 picks a free port (default 9001)")
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("--account-id", default="123456789012")
    parser.add_argument("--credentials", type=_credential, nargs="+", action="extend", default=[],
                        metavar="AKID:SECRET", help="verify SigV4 signatures against these keys")
    parser.add_argument("--assume-role-duration", type=int, default=3600, metavar="SECONDS")
    parser.add_argument("--port-file", help="write the port number to this file")
    parser.add_argument("--quiet", action="store_true", help="do not log requests and invocations")
    args = parser.parse_args(argv)
    if not os.path.isdir(args.functions):
        parser.error(f"--functions: not a directory: {args.functions}")

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    emulator = Emulator(
        args.functions, host=args.host, port=args.port, region=args.region, account_id=args.account_id,
        credentials=dict(args.credentials) or None, assume_role_duration=args.assume_role_duration,
        quiet=args.quiet,
    )
    try:
        emulator.start()
    except OSError as error:
        print(f"plpy_lambda emulator: cannot listen on {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1
    try:
        if args.port_file:
            temporary = f"{args.port_file}.tmp{os.getpid()}"
            with open(temporary, "w") as file:
                file.write(f"{emulator.port}\n")
            os.replace(temporary, args.port_file)
        print(f"plpy_lambda emulator listening on {emulator.url}", flush=True)
        # A short timeout: a signal that lands on another thread only wakes this
        # one at its next check.
        while not stop.wait(0.2):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
