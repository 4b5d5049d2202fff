"""Calls on the backend's own thread: our HTTP/1.1 exchange against answers that are valid
but unusual (chunked with extensions and trailers, an interim 100, bare LF line ends, HTTP/1.0
until the connection ends, a folded header, an answer a byte at a time), and against
answers that are not HTTP; a warm call starts no thread.

The endpoint is a small raw HTTP server of this file on 127.0.0.1 (it does not check
signatures); a second cluster points at it. The answer's shape is the function's name.
"""

import socket
import threading
import time

import psycopg
import pytest

from conftest import SERVER_ENV, threads_and_sockets
from cluster import Cluster

ANSWERS = {
    "plain": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Amz-Executed-Version: $LATEST\r\n\r\n{}"],
    "chunked": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nX-Amz-Executed-Version: $LATEST\r\n\r\n"
                b"3;ext=1\r\n{\"a\r\n5\r\n\": 1}\r\n0\r\nX-Trailer: t\r\n\r\n"],
    "continue": [b"HTTP/1.1 100 Continue\r\n\r\n"
                 b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nX-Amz-Executed-Version: 3\r\n\r\n[42]"],
    "lf": [b"HTTP/1.1 200 OK\nContent-Length: 7\nX-Amz-Executed-Version: 7\n\n[1,2,3]"],
    "folded": [b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nX-Amz-Executed-Version: a\r\n b\r\n\r\n{}"],
    "split": [bytes([b]) for b in
              b"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nX-Amz-Executed-Version: $LATEST\r\n\r\n"
              b"{\"split\": 1}\n"],
    "http10": [b"HTTP/1.0 200 OK\r\nX-Amz-Executed-Version: $LATEST\r\n\r\n{\"old\": true}"],
    "not_json": [b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc"],
    "not_http": [b"SMTP ready\r\n\r\n"],
    "bad_chunk": [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"],
}
CLOSES = {"http10", "not_http", "bad_chunk"}  # the server ends the connection after answering


class RawServer:
    """Answers each POST with ANSWERS[function name], on kept-alive connections."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.requests = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        data = b""
        with conn:
            while True:
                while b"\r\n\r\n" not in data:
                    piece = conn.recv(65536)
                    if not piece:
                        return
                    data += piece
                head, _, data = data.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(data) < length:
                    data += conn.recv(65536)
                body, data = data[:length], data[length:]
                function = head.split(b" ")[1].split(b"/")[3].decode()
                self.requests.append((function, body))
                for piece in ANSWERS[function]:
                    conn.sendall(piece)
                    if len(ANSWERS[function]) > 1:
                        time.sleep(0.0005)
                if function in CLOSES:
                    conn.shutdown(socket.SHUT_WR)
                    return

    def close(self):
        self.listener.close()


@pytest.fixture(scope="module")
def server():
    raw = RawServer()
    yield raw
    raw.close()


@pytest.fixture(scope="module")
def pg(server):
    cluster = Cluster(conf={"aws_lambda.endpoint_override": f"'http://127.0.0.1:{server.port}'"},
                      env=SERVER_ENV)
    cluster.start()
    cluster.psql("CREATE EXTENSION aws_lambda CASCADE;", check=True)
    yield cluster
    cluster.stop()


@pytest.fixture
def conn(pg):
    with psycopg.connect(pg.dsn(), autocommit=True) as connection:
        yield connection


def invoke(conn, function, payload="{}"):
    return conn.execute("SELECT status_code, payload::text, executed_version FROM "
                        "aws_lambda.invoke(%s, %s::json)", (function, payload)).fetchone()


@pytest.mark.parametrize("function, payload, version", [
    ("plain", "{}", "$LATEST"),
    ("chunked", '{"a": 1}', "$LATEST"),
    ("continue", "[42]", "3"),
    ("lf", "[1,2,3]", "7"),
    ("folded", "{}", "a b"),
    ("split", '{"split": 1}\n', "$LATEST"),
    ("http10", '{"old": true}', "$LATEST"),
])
def test_unusual_but_valid_answers_are_read_whole(conn, server, function, payload, version):
    for _ in range(3):
        assert invoke(conn, function, '{"n": 1}') == (200, payload, version)
    assert server.requests[-1] == (function, b'{"n": 1}')


def test_kept_alive_connections_are_reused_and_ended_ones_are_not(conn, server):
    invoke(conn, "plain")
    before = server.connections
    for function in ("plain", "chunked", "continue", "lf", "split", "plain"):
        invoke(conn, function)
    assert server.connections == before  # one kept-alive connection for all of them
    for _ in range(3):
        invoke(conn, "http10")  # the server ends each: the next call connects again
    assert server.connections == before + 2
    invoke(conn, "plain")
    assert server.connections == before + 3


@pytest.mark.parametrize("function, detail", [
    ("not_json", "AWS Lambda client returned 'Invalid response: the function's payload is not JSON'."),
    ("not_http", "AWS Lambda client returned 'Connection lost before the response was complete'."),
    ("bad_chunk", "AWS Lambda client returned 'Connection lost before the response was complete'."),
])
def test_answers_that_cannot_be_read_are_lm005(conn, server, function, detail):
    sent = len(server.requests)
    with pytest.raises(psycopg.Error) as caught:
        invoke(conn, function)
    assert caught.value.diag.sqlstate == "LM005"
    assert caught.value.diag.message_detail == detail
    assert "Traceback" not in (caught.value.diag.context or "")
    assert len(server.requests) == sent + 1  # not sent again
    assert invoke(conn, "plain") == (200, "{}", "$LATEST")  # the session goes on


def test_a_warm_call_starts_no_thread(conn):
    invoke(conn, "plain")
    pid = conn.info.backend_pid
    before = threads_and_sockets(pid)
    for _ in range(50):
        invoke(conn, "plain")
    assert threads_and_sockets(pid) == before


def test_invoke_many_reads_split_answers_in_order(conn, server):
    rows = conn.execute("""SELECT ordinality, status_code, payload::text, error_sqlstate
        FROM aws_lambda.invoke_many('split', ARRAY(SELECT json_build_object('i', g)
                                                   FROM generate_series(1, 40) g),
                                    max_concurrency => 8)""").fetchall()
    assert rows == [(n, 200, '{"split": 1}\n', None) for n in range(1, 41)]
    bodies = sorted(body for function, body in server.requests[-40:])
    assert bodies == sorted(f'{{"i" : {n}}}'.encode() for n in range(1, 41))
