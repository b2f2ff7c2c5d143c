"""A client's bytes as requests, framed the way each replica frames them.

The app's port (serving/front/port_relay.py) reads requests with httptools (llhttp), the parser that
uvicorn, and so every replica's own HTTP port, runs. What the parser refuses (Content-Length with
Transfer-Encoding, two Content-Lengths, a bad chunk size, a bad header) is answered as uvicorn
answers it and never passed on. What it accepts is written anew from what it read, head and body
(a chunked body re-chunked), so a replica cannot read a request's bounds differently from the
relay: no request hides inside another's body.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote

import httptools

# A request head (request line, headers, or a chunked body's trailers) longer than this is refused:
# what the relay holds of one client stays bounded. Browsers send far less (a cookie is 4 KB at most).
MAX_HEAD = 64 * 1024


def _answer(status: int, phrase: str, body: str) -> bytes:
    """An answer that ends the connection, in the form of uvicorn's own (serving/front/port_relay.py's peers)."""
    return (f"HTTP/1.1 {status} {phrase}\r\ncontent-type: text/plain; charset=utf-8\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n{body}").encode()


BAD_REQUEST = _answer(400, "Bad Request", "Invalid HTTP request received.")  # uvicorn's words
# uvicorn with httptools sets no limit; h11 answers 400 past 16 KB but names 431 as the fitting status.
HEAD_TOO_LARGE = _answer(431, "Request Header Fields Too Large", "Request header fields too large.")
UNAVAILABLE = _answer(503, "Service Unavailable", "Service Unavailable")  # uvicorn's limit_concurrency answer
NOT_FOUND = _answer(404, "Not Found", "Not Found")


class Refused(Exception):
    """The client's bytes are no request the relay passes on: `answer` is written and the connection closed."""

    def __init__(self, answer: bytes):
        super().__init__(answer.split(b"\r\n", 1)[0].decode())
        self.answer = answer


class _TooLarge(Exception):
    pass


@dataclass(frozen=True, slots=True)
class Head:
    """A request head: `raw` as it is passed on, `scope` what routing reads (serving/front/sessions.py)."""

    raw: bytes
    scope: dict  # method, path (unquoted), query_string, headers (names in lower case), as uvicorn's ASGI scope
    resendable: bool  # GET or HEAD without a body: it may go to a replica again (it changes nothing)


class RequestFramer:
    """feed(bytes) -> the requests' pieces, in order: a Head, then the body's bytes as they are to be sent.
    After a protocol switch (a websocket) the bytes are returned as they came."""

    def __init__(self) -> None:
        self._parser = httptools.HttpRequestParser(self)
        # As uvicorn sets it: bytes after a `Connection: close` request are ignored rather than refused.
        self._parser.set_dangerous_leniencies(lenient_data_after_close=True)
        self._out: list[Head | bytes] = []
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._head_size = 0  # the head's (or the trailers') bytes read so far
        self._held = 0  # bytes fed since the parser last gave something back (a head, body bytes, an end)
        self._chunked = False
        self._trailers: list[bytes] | None = None  # a chunked body's, once its head is passed on
        self.in_head = True  # a head is awaited or under way (a client's first one, too, before any byte)
        self.upgraded = False

    def feed(self, data: bytes) -> list[Head | bytes]:
        if self.upgraded:
            return [data]
        self._held += len(data)
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as switch:
            self.upgraded = True
            if rest := data[switch.args[0]:]:
                self._out.append(bytes(rest))
        except httptools.HttpParserError as error:
            self._out = []
            raise Refused(HEAD_TOO_LARGE if isinstance(error.__context__, _TooLarge) else BAD_REQUEST) from None
        if self._held > MAX_HEAD:  # one endless header line, which llhttp holds until it ends
            self._out = []
            raise Refused(HEAD_TOO_LARGE)
        out, self._out = self._out, []
        return out

    # -- httptools' callbacks -----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self._url, self._headers, self._head_size = b"", [], 0
        self._chunked, self._trailers, self.in_head = False, None, True

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._grow(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._grow(len(name) + len(value) + 4)
        value = value.rstrip(b" \t")  # llhttp keeps trailing whitespace, which is not the value's (uvicorn)
        if self._trailers is not None:
            self._trailers.append(name + b": " + value + b"\r\n")
        else:
            self._headers.append((name, value))

    def _grow(self, n: int) -> None:
        self._head_size += n
        if self._head_size > MAX_HEAD:
            raise _TooLarge

    def on_headers_complete(self) -> None:
        parser = self._parser
        method = parser.get_method()
        # The path as uvicorn reads it (ASCII, unquoted): a URL it cannot read fails here, as there.
        url = httptools.parse_url(self._url)
        path = url.path.decode("ascii")
        headers = [(name.lower(), value) for name, value in self._headers]
        fields = dict(headers)
        self._chunked = b"transfer-encoding" in fields  # llhttp accepts it only ending in chunked
        body = self._chunked or fields.get(b"content-length", b"0").strip() not in (b"0", b"")
        raw = b"".join([method, b" ", self._url, b" HTTP/", parser.get_http_version().encode(), b"\r\n",
                        *(b"%s: %s\r\n" % pair for pair in self._headers), b"\r\n"])
        scope = {"method": method.decode("ascii"), "path": unquote(path) if "%" in path else path,
                 "query_string": url.query or b"", "headers": headers}
        self._out.append(Head(raw, scope, method in (b"GET", b"HEAD") and not body and not parser.should_upgrade()))
        self.in_head, self._head_size, self._held = False, 0, 0  # trailers are counted afresh
        if self._chunked:
            self._trailers = []

    def on_body(self, body: bytes) -> None:
        self._held = 0
        self._out.append(b"%x\r\n%s\r\n" % (len(body), body) if self._chunked else bytes(body))

    def on_message_complete(self) -> None:
        self._held = 0
        if self._chunked:
            self._out.append(b"0\r\n" + b"".join(self._trailers or ()) + b"\r\n")
