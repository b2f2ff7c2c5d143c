"""The app's port frames requests as a replica does (serving/front/http_framing.py): random request heads and
bodies, sent raw through the relay and straight to a replica (uvicorn, as Serve's direct ingress runs
it), get the same answers; random broken ones are refused alike."""

from __future__ import annotations

import socket
import string

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_port_relay import _Server

from serving.core.preflight import free_loopback_port
from serving.front.port_relay import PortRelay

APP, DEPLOYMENT = "gradio-serve", "app"
METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
# Headers that frame the request or the connection: the test sets them itself.
FRAMING = {"content-length", "transfer-encoding", "connection", "host", "upgrade", "expect", "keep-alive", "te",
           "trailer", "proxy-connection"}


async def _mirror(scope, receive, send):
    """Answers with all of the request it saw: method, path, query, headers, body."""
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    seen = repr((scope["method"], scope["path"], scope["raw_path"], scope["query_string"], scope["headers"], body))
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(seen)).encode())]})
    await send({"type": "http.response.body", "body": seen.encode()})


@pytest.fixture(scope="module")
def ports():
    """A replica's own port, and the relay's in front of it alone (whole connections) or of two (routed)."""
    replicas = [_Server(app=_mirror), _Server(app=_mirror)]
    relays = [PortRelay("127.0.0.1", free_loopback_port(), replicas[0].port, APP) for _ in range(2)]
    relays[0].point_at(DEPLOYMENT, {"aaaa": replicas[0].port})
    relays[1].point_at(DEPLOYMENT, {"aaaa": replicas[0].port, "bbbb": replicas[1].port})
    for relay in relays:
        relay.start()
    yield {"direct": replicas[0].port, "whole": relays[0].port, "routed": relays[1].port}
    for relay in relays:
        relay.stop()
    for replica in replicas:
        replica.stop()


def _answer(port: int, request: bytes, method: str) -> tuple[bytes, bytes] | None:
    """(status line, body) of the first answer, or None when none comes (the connection closes first)."""
    with socket.create_connection(("127.0.0.1", port), timeout=3) as sock:
        sock.sendall(request)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                if not (chunk := sock.recv(65536)):
                    return None
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            fields = dict(line.split(b":", 1) for line in head.split(b"\r\n")[1:])
            length = 0 if method == "HEAD" else int(fields.get(b"content-length", b"0"))
            while len(body) < length and (chunk := sock.recv(65536)):
                body += chunk
        except (TimeoutError, ConnectionResetError):
            return None
    return head.split(b"\r\n", 1)[0], body


def _same_answers(ports, request: bytes, method: str) -> None:
    direct = _answer(ports["direct"], request, method)
    assert _answer(ports["whole"], request, method) == direct
    assert _answer(ports["routed"], request, method) == direct


name = st.text(TOKEN, min_size=1, max_size=12).filter(lambda n: n.lower() not in FRAMING)
value = st.text(st.characters(codec="latin-1", exclude_characters="\r\n\x7f",
                              exclude_categories=["Cc"]) | st.sampled_from(" \t"), max_size=24)
segment = st.text(string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@", max_size=8) | st.sampled_from(
    ["%20", "%2F", "%C3%A9", "%zz", "a%"])
target = st.builds(lambda parts, query: "/" + "/".join(parts) + (f"?{query}" if query is not None else ""),
                   st.lists(segment, max_size=4), st.none() | st.text(string.ascii_letters + "=&%+", max_size=12))


@st.composite
def requests(draw) -> tuple[bytes, str]:
    method = draw(st.sampled_from(METHODS))
    headers = draw(st.lists(st.tuples(name, value), max_size=6))
    body = draw(st.binary(max_size=3000))
    framing = draw(st.sampled_from(["length", "chunked"])) if body else draw(st.sampled_from(["none", "length"]))
    lines = [f"{method} {draw(target)} HTTP/1.1", "Host: example.com", *(f"{n}: {v}" for n, v in headers)]
    if framing == "length":
        lines.append(f"Content-Length: {len(body)}")
    elif framing == "chunked":
        lines.append("Transfer-Encoding: chunked")
        cuts = sorted(draw(st.lists(st.integers(1, len(body)), max_size=4, unique=True)))
        pieces = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True) if b > a]
        body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces) + b"0\r\n\r\n"
    lines.append("Connection: close")
    return "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n" + body, method


SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(request=requests())
def test_any_request_gets_the_same_answer_through_the_relay(ports, request):
    data, method = request
    _same_answers(ports, data, method)


# Ways to break a request: each either refuses it (400) or keeps it whole, the same for both.
BREAKS = {
    "content-length and chunked": lambda head, n: head + f"\r\nContent-Length: {n}\r\nTransfer-Encoding: chunked",
    "two content-lengths": lambda head, n: head + f"\r\nContent-Length: {n}\r\nContent-Length: {n + 1}",
    "a bad chunk size": lambda head, n: head + "\r\nTransfer-Encoding: chunked\r\n\r\nz" + "1" * (n % 5),
    "a bad transfer-encoding": lambda head, n: head + "\r\nTransfer-Encoding: chunked, gzip",
    "a space before a colon": lambda head, n: head + "\r\nX-N" + " " * (1 + n % 3) + ": v",
    "a folded header": lambda head, n: head + "\r\nX-N: a\r\n" + " " * (1 + n % 3) + "b",
    "a bare line feed": lambda head, n: head.replace("\r\n", "\n", 1 + n % 2),
}


@SETTINGS
@given(request=requests(), how=st.sampled_from(list(BREAKS)), n=st.integers(0, 100),
       insert=st.none() | st.tuples(st.integers(0, 200), st.sampled_from(list(" \t\x00\x01\x7f\xff:(@\"a/?#%"))))
def test_any_broken_request_is_refused_alike(ports, request, how, n, insert):
    data, method = request
    head = data.partition(b"\r\n\r\n")[0].decode("latin-1").replace("\r\nConnection: close", "")
    head = BREAKS[how](head, n)
    if insert is not None:  # one odd byte anywhere in the head
        at, char = insert
        at %= len(head) + 1
        head = head[:at] + char + head[at:]
    broken = (head + "\r\n\r\n").encode("latin-1")
    direct = _answer(ports["direct"], broken, method)
    assert direct is None or direct[0].startswith((b"HTTP/1.1 4", b"HTTP/1.1 2"))
    _same_answers(ports, broken, method)
