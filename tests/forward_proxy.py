"""A small threaded forward proxy on 127.0.0.1, for tests.

CONNECT host:port tunnels bytes both ways (HTTPS through the proxy); a request
with an absolute-form target (POST http://host:port/path) is forwarded and its
answer relayed. ``credentials=("user", "password")`` makes it demand Basic
Proxy-Authorization (407 otherwise); ``refuse=403`` makes it answer every request
with that status. ``requests`` lists what it received, in order, as
"METHOD target" lines; ``authorizations`` the Proxy-Authorization header of each
(None when absent).

    with ForwardProxy(credentials=("u", "p")) as proxy:
        proxy.url                      # http://127.0.0.1:PORT
        proxy.url_with("u", "p")       # http://u:p@127.0.0.1:PORT
        proxy.requests                 # ["CONNECT 127.0.0.1:4443", ...]
"""

import base64
import http.client
import select
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-authorization", "proxy-authenticate",
              "proxy-connection", "te", "trailer", "transfer-encoding", "upgrade"}


class ForwardProxy:
    def __init__(self, credentials=None, refuse=None):
        self.credentials = credentials
        self.refuse = refuse
        self.requests = []
        self.authorizations = []
        self._lock = threading.Lock()
        self._server = None
        self._thread = None

    def start(self):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.proxy = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.1}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return f"http://127.0.0.1:{self.port}"

    def url_with(self, user, password):
        return f"http://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{self.port}"

    def clear(self):
        with self._lock:
            self.requests.clear()
            self.authorizations.clear()

    def _record(self, line, authorization):
        with self._lock:
            self.requests.append(line)
            self.authorizations.append(authorization)

    def _authorized(self, header):
        if self.credentials is None:
            return True
        expected = base64.b64encode(":".join(self.credentials).encode()).decode()
        return header == f"Basic {expected}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client or upstream going away is no test failure


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, format, *args):
        pass

    def _admitted(self):
        """Record the request; answer it with a refusal and return False if it is refused."""
        proxy = self.server.proxy
        authorization = self.headers.get("Proxy-Authorization")
        proxy._record(f"{self.command} {self.path}", authorization)
        if proxy.refuse:
            self._refuse(proxy.refuse)
            return False
        if not proxy._authorized(authorization):
            self._refuse(407, [("Proxy-Authenticate", 'Basic realm="test proxy"')])
            return False
        return True

    def _refuse(self, status, headers=()):
        body = f"{status} {self.responses.get(status, ('',))[0]}\n".encode()
        self._discard_body()
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def _discard_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)

    def do_CONNECT(self):
        if not self._admitted():
            return
        host, _, port = self.path.rpartition(":")
        try:
            upstream = socket.create_connection((host.strip("[]"), int(port)), timeout=10)
        except (OSError, ValueError):
            self._refuse(502)
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = True
        client = self.connection
        client.settimeout(None)
        upstream.settimeout(None)
        try:
            sockets = [client, upstream]
            while True:
                readable, _, _ = select.select(sockets, [], [], 30)
                if not readable:
                    return
                for sock in readable:
                    data = sock.recv(65536)
                    if not data:
                        return
                    (upstream if sock is client else client).sendall(data)
        except OSError:
            pass
        finally:
            upstream.close()

    def do_POST(self):
        if not self._admitted():
            return
        target = urlsplit(self.path)
        if target.scheme != "http" or not target.hostname:
            self._refuse(400)
            return
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {name: value for name, value in self.headers.items()
                   if name.lower() not in HOP_BY_HOP}
        path = target.path + ("?" + target.query if target.query else "")
        upstream = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=30)
        try:
            upstream.request(self.command, path, body=body, headers=headers)
            answer = upstream.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException):
            self._refuse(502)
            return
        finally:
            upstream.close()
        self.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() not in HOP_BY_HOP and name.lower() not in ("content-length", "date",
                                                                       "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_DELETE = do_POST
