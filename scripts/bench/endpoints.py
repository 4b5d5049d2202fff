"""The fixed-response endpoint (nginx), the floor function that posts to it from inside a
backend, and the relay process of the commit-latency measurement."""

import collections
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

from cluster import free_port
from fixture import ACCESS_KEY, REGION, ROOT, SECRET_KEY
from plpy_lambda import sigv4

# 200 "{}" to every POST, with X-Amz-Executed-Version: $LATEST (nginx has no escape for "$"
# in a string; a geo variable holds one). Bodies up to 8 MB, kept-alive connections.
NGINX_CONF = """daemon off;
worker_processes 2;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 8m;
    client_body_buffer_size 8m;
    keepalive_requests 1000000;
    keepalive_timeout 300s;
    geo $dollar {{ default "$"; }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            if ($request_method != POST) {{ return 405; }}
            default_type application/json;
            add_header X-Amz-Executed-Version "${{dollar}}LATEST" always;
            return 200 '{{}}';
        }}
    }}
}}
"""


def nginx_binary():
    return shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)


def stop_process(process, timeout=10):
    """SIGTERM, then SIGKILL after timeout seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class FixedEndpoint:
    """nginx on 127.0.0.1, plain HTTP, the same answer to every POST on any path: an endpoint
    that costs next to nothing, so that a rate against it is the sender's own."""

    def __init__(self):
        self.directory = tempfile.mkdtemp(prefix="aws_lambda_nginx_")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        conf = os.path.join(self.directory, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.directory, port=self.port))
        with open(os.path.join(self.directory, "stderr"), "w") as stderr:
            self.process = subprocess.Popen(
                [nginx_binary(), "-p", self.directory + "/", "-c", conf, "-e",
                 os.path.join(self.directory, "error.log")], stdout=subprocess.DEVNULL, stderr=stderr)
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError("nginx did not start")
                time.sleep(0.02)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()

    def stop(self):
        stop_process(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)


# The floor: one raw keep-alive HTTP POST from inside the backend, its request head built and
# signed once (plpy_lambda.sigv4) and kept in GD with the socket; the answer read by
# http.client's response parser. Nothing an invoke could leave out.
FLOOR_FUNCTION = """
CREATE FUNCTION public.bench_floor(payload json) RETURNS int LANGUAGE plpython3u AS $py$
state = GD.get("bench_floor")
if state is None:
    import http.client, socket
    sock = socket.create_connection(("127.0.0.1", %(port)d))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    state = GD["bench_floor"] = (sock, http.client.HTTPResponse, %(head)r)
sock, Response, head = state
body = payload.encode()
sock.sendall(head + b"%%d\\r\\n\\r\\n%%s" %% (len(body), body))
response = Response(sock, method="POST")
response.begin()
response.read()
return response.status
$py$
"""

Credentials = collections.namedtuple("Credentials", "access_key secret_key token")


def create_floor_function(conn, port):
    """public.bench_floor(payload json) -> HTTP status, posting to 127.0.0.1:port."""
    host, path = f"127.0.0.1:{port}", "/2015-03-31/functions/noop/invocations"
    headers = sigv4.sign("POST", host, path, "", {"X-Amz-Invocation-Type": "RequestResponse",
                                                  "X-Amz-Log-Type": "None"},
                         b"{}", REGION, "lambda", Credentials(ACCESS_KEY, SECRET_KEY, None))
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    conn.execute(FLOOR_FUNCTION % {"port": port, "head": (head + "Content-Length: ").encode()})


class RelayProcess:
    """python -m plpy_lambda.relay in its own process."""

    label = "python -m plpy_lambda.relay (one relay)"

    def __init__(self, dsn):
        self.log = tempfile.NamedTemporaryFile("w+", prefix="aws_lambda_relay_", suffix=".log")
        self.process = subprocess.Popen([sys.executable, "-m", "plpy_lambda.relay", "--dsn", dsn], cwd=ROOT,
                                        env={**os.environ, "PYTHONPATH": ROOT},
                                        stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-2000:]

    def stop(self):
        stop_process(self.process, timeout=15)
        self.log.close()
