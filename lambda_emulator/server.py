"""HTTP plumbing: a threaded HTTP/1.1 keep-alive server.

Owns reading requests (Content-Length or chunked bodies), routing them to the
Lambda Invoke API, STS or the ``/_emulator/`` controls, and writing answers in
one piece (so small answers cost one send), including the broken ones faults
ask for (no answer at all, a truncated body, a body streamed or dripped while
it is produced, a TCP reset instead of an orderly close), and closing keep-alive
connections left idle (the ``idle_close`` fault, else after
``RequestHandler.timeout``) or as a request arrives (``close_unread``). Each
connection has a daemon thread; a client that goes away costs the server nothing but that thread.
stop() also closes connections still open, so keep-alive clients of a stopped
emulator see it gone.
"""

import select
import socket
import ssl
import struct
import sys
import threading
import time
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import control, faults, lambda_api, sts
from .messages import Request, Response, aws_error, new_request_id

MAX_BODY = 64 * 1024 * 1024  # larger bodies are refused unread (Lambda's own limit is 6 MB)


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops connections when 20 clients connect at once

    def __init__(self, address, emulator):
        self.emulator = emulator
        self._connections = set()
        self._closings = {}  # connection -> (reset, fault) for close_with
        self._connections_lock = threading.Lock()
        super().__init__(address, RequestHandler)

    def process_request(self, connection, client_address):
        with self._connections_lock:
            self._connections.add(connection)
        super().process_request(connection, client_address)

    def shutdown_request(self, connection):
        with self._connections_lock:
            self._connections.discard(connection)
            reset, fault = self._closings.pop(connection, (False, None))
        if reset:  # no orderly end first: SO_LINGER 0 makes close() send a reset
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_request(connection)
        else:
            super().shutdown_request(connection)
        if fault is not None:
            self.emulator.faults.closed(fault)

    def close_with(self, connection, reset=False, fault=None):
        """How the connection is to be closed: with a TCP reset or not, and the connection
        fault that closes it (counted as closed once it is)."""
        with self._connections_lock:
            self._closings[connection] = (reset, fault)

    def close_connections(self):
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, connection, client_address):
        # A client that goes away, or refuses our certificate, is no emulator bug.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            super().handle_error(connection, client_address)


def route(emu, request):
    match = lambda_api.INVOKE_PATH.fullmatch(request.path)
    if match and request.method == "POST":
        return lambda_api.handle(emu, request, match.group(1))
    if request.path.startswith("/_emulator/"):
        return control.handle(emu, request)
    if request.path == "/" and request.method == "POST":
        return sts.handle(emu, request)
    return aws_error(404, "UnknownOperationException", f"Unknown operation: {request.method} {request.path}",
                     new_request_id())


class RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "plpy_lambda-emulator"
    disable_nagle_algorithm = True
    timeout = 300  # idle keep-alive connections are closed after this many seconds

    def handle_one_request(self):
        if self._answered and not self._await_request():
            self.close_connection = True
            return
        super().handle_one_request()
        self._answered = True

    def _await_request(self):
        """Wait for the next request on a kept-alive connection; False: close it.

        The connection faults are looked at while waiting: idle_close ends the wait
        after its seconds, close_unread when a request arrives (it is not read)."""
        faults_ = self.server.emulator.faults
        since = time.monotonic()
        while True:
            fault = faults_.connection_fault()
            left = since + self.timeout - time.monotonic()
            if fault is not None and fault.kind == "idle_close":
                left = min(left, since + float(fault.params["seconds"]) - time.monotonic())
            if left <= 0:
                if fault is not None and fault.kind == "idle_close":
                    faults_.use(fault)
                    self.server.close_with(self.connection, bool(fault.params["reset"]), fault)
                return False
            try:
                readable, _, _ = select.select([self.connection], [], [], min(left, 0.05))
            except (OSError, ValueError):
                return False
            if readable:
                if not self._data_waiting():
                    return False  # the client closed the connection
                fault = faults_.connection_fault()
                if fault is not None and fault.kind == "close_unread":
                    faults_.use(fault)
                    self.server.close_with(self.connection, fault=fault)
                    return False
                return True

    def _data_waiting(self):
        try:
            return bool(self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
        except ValueError:  # TLS: cannot peek; a readable connection is taken to have data
            return True
        except BlockingIOError:
            return True
        except OSError:
            return False

    _answered = False

    def do_POST(self):
        emu = self.server.emulator
        try:
            body = self._read_body()
            if isinstance(body, Response):
                response = body
            else:
                path, _, query = self.path.partition("?")
                request = Request(self.command, path, query, self.headers, body, time.time())
                response = route(emu, request)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        except Exception as error:  # an emulator bug: say so, keep serving
            traceback.print_exc()
            response = aws_error(500, "ServiceException", f"emulator error: {error!r}", new_request_id())
        try:
            self._send(response)
        except (ConnectionError, TimeoutError):
            self.close_connection = True

    do_GET = do_PUT = do_DELETE = do_POST

    def _read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            return self._read_chunked()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            return aws_error(400, "InvalidRequestContentException", "Invalid Content-Length", new_request_id())
        if length > MAX_BODY:
            self.close_connection = True
            return aws_error(413, "RequestEntityTooLargeException",
                             f"Request must be smaller than {MAX_BODY} bytes", new_request_id())
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            raise ConnectionResetError("client closed the connection while sending")
        return body

    def _read_chunked(self):
        chunks, total = [], 0
        while True:
            line = self.rfile.readline(1024)
            if not line:
                raise ConnectionResetError("client closed the connection while sending")
            try:
                size = int(line.split(b";")[0], 16)
            except ValueError:
                self.close_connection = True
                return aws_error(400, "InvalidRequestContentException", "Invalid chunked body", new_request_id())
            if size == 0:
                break
            total += size
            if total > MAX_BODY:
                self.close_connection = True
                return aws_error(413, "RequestEntityTooLargeException",
                                 f"Request must be smaller than {MAX_BODY} bytes", new_request_id())
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)
        while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(chunks)

    def _send(self, response):
        if response.close:
            self.close_connection = True
            if isinstance(response, faults.Closing) and response.reset:
                self.server.close_with(self.connection, reset=True)
            self._log(0, 0)
            return
        if isinstance(response, faults.Streamed):
            self._send_streamed(response)
            return
        body = response.body
        reason = self.responses.get(response.status, ("",))[0]
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Date: {self.date_time_string()}"]
        if response.status != 204:  # a 204 has no body, and says nothing about its length
            lines.append(f"Content-Length: {len(body)}")
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        if self.close_connection:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        if response.truncate_at is not None:
            self.close_connection = True
            body = body[:response.truncate_at]
        if len(body) < 65536:
            self.wfile.write(head + body)
        else:
            self.wfile.write(head)
            self.wfile.write(body)
        self._log(response.status, len(body))

    def _head(self, response, length):
        reason = self.responses.get(response.status, ("",))[0]
        lines = [f"HTTP/1.1 {response.status} {reason}", f"Date: {self.date_time_string()}"]
        lines.append(f"Content-Length: {length}" if length is not None
                     else "Transfer-Encoding: chunked")
        if response.content_type:
            lines.append(f"Content-Type: {response.content_type}")
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def _send_streamed(self, response):
        """A body produced while it is sent: a huge answer, or one that drips."""
        head = self._head(response, response.length)
        if response.head_interval is None:
            self.wfile.write(head)
        else:
            step = response.head_chunk
            for start in range(0, len(head), step):
                if start:
                    time.sleep(response.head_interval)
                self.wfile.write(head[start:start + step])
        sent = 0
        try:
            for piece in response.pieces:
                if response.length is None:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                else:
                    self.wfile.write(piece)
                sent += len(piece)
            if response.length is None:
                self.wfile.write(b"0\r\n\r\n")
        finally:
            response.pieces.close()
            self._log(response.status, sent)

    def _log(self, status, size):
        if not self.server.emulator.quiet:
            self.log_request(status, size)

    def log_message(self, format, *args):
        if not self.server.emulator.quiet:
            sys.stderr.write(f"{self.client_address[0]} - {format % args}\n")
