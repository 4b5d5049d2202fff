"""The answer of one HTTP/1.1 exchange, read off a non-blocking socket: the status line,
the headers (Headers) and a body framed by Content-Length, chunked encoding or the
connection's end (Answer), within the size limit; the result is a Response. A large body
is read into an anonymous memory mapping rather than the heap, which would keep it after
it is freed.
"""

MAPPED_BODY = 256 * 1024  # larger bodies are read into a memory mapping (see Answer)
MAX_HEAD = 64 * 1024  # an answer's status line and headers


class Response:
    """An answer: status, headers (Headers) and body.

    A large body is read into an anonymous memory mapping rather than the heap, which
    would keep it after it is freed; it becomes bytes on first use."""

    __slots__ = ("status", "headers", "_body", "_mapped", "_size")

    def __init__(self, status, headers, body=b"", mapped=None, size=0):
        self.status = status
        self.headers = headers
        self._body = body
        self._mapped = mapped
        self._size = size

    @property
    def body(self):
        if self._mapped is not None:
            self._body = self._mapped[:self._size]
            self._mapped.close()
            self._mapped = None
        return self._body


class Headers:
    """An answer's header fields, by name (lower case): the value of the last field of that
    name, or default. Looked up in the head's text rather than all parsed up front: an
    answer has some ten fields, and a call reads three to five."""

    __slots__ = ("_text", "_lower")

    def __init__(self, head):
        if "\n " in head or "\n\t" in head:  # obsolete line folding: one line each
            import re

            head = re.sub(r"[ \t]*\r?\n[ \t]+", " ", head)
        self._text = head = head + "\n"  # every field's line ends with one
        self._lower = head.lower()  # as long as head: latin-1 characters lower to one each

    def get(self, name, default=None):
        at = self._lower.rfind("\n" + name + ":")
        if at < 0:
            return default
        start = at + len(name) + 2
        return self._text[start:self._text.find("\n", start)].strip()


class Answer:
    """An HTTP/1.1 answer, parsed as its bytes arrive."""

    # What an answer starts with, but for its limit (see Call's).
    buf = b""
    status = None
    headers = None
    will_close = False
    until_end = False
    length = None  # body bytes still to come (Content-Length)
    chunk = 0  # bytes left in the current chunk
    body = None
    extra = False  # bytes after the answer: the connection is not reused
    large = False
    _mapped = None
    _size = 0
    _state = 0  # 0 head, 1 body by length, 2 chunk size, 3 chunk data, 4 chunk end, 5 trailer,
    # 6 until the end, 7 done

    def __init__(self, limit):
        self.limit = limit

    def feed(self, data, call):
        """Take bytes of the answer; True when it is whole. Raises LambdaError."""
        buf = self.buf + data if self.buf else data
        self.buf = b""
        while True:
            state = self._state
            if state == 0:
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    end = buf.find(b"\n\n")
                    skip = 2
                else:
                    skip = 4
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise call.bad_answer("the answer's head is too long")
                    self.buf = buf
                    return False
                self._head(buf[:end], call)
                buf = buf[end + skip:]
                if self._state == 7:
                    self.extra = bool(buf)
                    return True
            elif state == 1:
                if len(buf) == self.length and self.body is None and self._mapped is None:
                    self.body, self._size, self.length, self._state = buf, len(buf), 0, 7
                    return True  # the common case: the whole body, in one read
                take = buf if len(buf) <= self.length else buf[:self.length]
                self._add(take, call)
                self.length -= len(take)
                if self.length == 0:
                    self.extra = len(buf) > len(take)
                    self._state = 7
                    return True
                return False
            elif state == 2 or state == 5:
                end = buf.find(b"\n")
                if end < 0:
                    if len(buf) > MAX_HEAD:
                        raise call.bad_answer("a chunk's size line is too long")
                    self.buf = buf
                    return False
                line = buf[:end].strip()
                buf = buf[end + 1:]
                if state == 5:
                    if not line:
                        self.extra = bool(buf)
                        self._state = 7
                        return True
                    continue
                try:
                    size = int(line.split(b";", 1)[0], 16)
                except ValueError:
                    raise call.bad_answer("a chunk's size is not a number") from None
                if size < 0:
                    raise call.bad_answer("a chunk's size is not a number")
                if size == 0:
                    self._state = 5
                else:
                    self.chunk = size
                    self._state = 3
            elif state == 3:
                if not buf:
                    return False
                take = buf if len(buf) <= self.chunk else buf[:self.chunk]
                self._add(take, call)
                self.chunk -= len(take)
                buf = buf[len(take):]
                if self.chunk == 0:
                    self._state = 4
            elif state == 4:
                if len(buf) < 2 and buf in (b"", b"\r"):
                    self.buf = buf
                    return False
                if buf.startswith(b"\r\n"):
                    buf = buf[2:]
                elif buf.startswith(b"\n"):
                    buf = buf[1:]
                else:
                    raise call.bad_answer("a chunk does not end where its size says")
                self._state = 2
            elif state == 6:
                self._add(buf, call)
                return False
            else:
                self.extra = bool(buf)
                return True

    def _head(self, head, call):
        text = head.decode("latin-1")
        end = text.find("\n")
        first = text if end < 0 else text[:end]
        status_line = first.split(None, 2)
        try:
            if len(status_line) < 2 or not status_line[0].startswith("HTTP/"):
                raise ValueError
            status = int(status_line[1])
            if not 100 <= status <= 999:
                raise ValueError
        except ValueError:
            raise call.bad_answer(f"the answer is not HTTP: {first[:60]!r}") from None
        if 100 <= status < 200:  # an interim answer (100 Continue): the real one follows
            return
        self.status = status
        self.headers = headers = Headers(text)
        version = status_line[0]
        connection = headers.get("connection", "").lower()
        self.will_close = "close" in connection or (
            version == "HTTP/1.0" and "keep-alive" not in connection)
        length = headers.get("content-length")
        if status in (204, 304):
            self._state = 7
        elif "chunked" in headers.get("transfer-encoding", "").lower():
            self._state = 2
        elif length is not None:
            try:
                length = int(length)
                if length < 0:
                    raise ValueError
            except ValueError:
                raise call.bad_answer("the answer's Content-Length is not a number") from None
            if length > self.limit:
                raise call.too_large(status, f"{length} bytes")
            self.length = length
            if length >= MAPPED_BODY:
                self._map(length)
            self._state = 1 if length else 7
        else:
            self.until_end = True
            self.will_close = True
            self._state = 6

    def _map(self, size):
        import mmap

        mapped = mmap.mmap(-1, size)  # committed only as it is written
        if self.body:
            mapped[:len(self.body)] = self.body
        self._mapped = mapped
        self.body = None
        self.large = True

    def _add(self, data, call):
        if not data:
            return
        size = self._size + len(data)
        if size > self.limit:
            self._drop()
            raise call.too_large(self.status, "more")
        if self._mapped is None and size >= MAPPED_BODY and self.length is None:
            self._map(self.limit + 1)
        if self._mapped is not None:
            self._mapped[self._size:size] = data
        elif self.body is None:
            self.body = data
        elif isinstance(self.body, bytearray):
            self.body += data
        else:
            self.body = bytearray(self.body) + data
        self._size = size

    def _drop(self):
        if self._mapped is not None:
            self._mapped.close()
            self._mapped = None
        self.body = None

    def response(self):
        if self._mapped is not None:
            mapped, self._mapped = self._mapped, None
            return Response(self.status, self.headers, None, mapped, self._size)
        body = self.body
        return Response(self.status, self.headers,
                        b"" if body is None else bytes(body) if isinstance(body, bytearray) else body)

