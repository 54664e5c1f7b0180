"""gunicorn's response headers and first body bytes leave in one system call (serving/one_write.py),
byte for byte what gunicorn sends in two; what is not the plain case is left to gunicorn."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from gunicorn.http import wsgi

from serving.one_write import send_headers_with_body


class Socket:
    def __init__(self):
        self.calls: list[bytes] = []

    def sendall(self, data: bytes) -> None:
        self.calls.append(data)


def respond(method: str, status: str, headers: list, chunks: list[bytes]) -> list[bytes]:
    """What a gunicorn Response sends, one entry per sendall."""
    request = SimpleNamespace(version=(1, 1), method=method, should_close=lambda: False)
    socket = Socket()
    response = wsgi.Response(request, socket, SimpleNamespace())
    response.start_response(status, headers)
    for chunk in chunks:
        response.write(chunk)
    response.close()
    return socket.calls


CASES = [
    ("GET", "200 OK", [("Content-Type", "application/json"), ("Content-Length", "12")], [b'{"ok": true', b"}"]),
    ("GET", "200 OK", [("Content-Type", "text/plain")], [b"no length, ", b"chunked"]),
    ("HEAD", "200 OK", [("Content-Length", "5")], [b"hello"]),
    ("GET", "204 NO CONTENT", [], [b""]),
    ("GET", "200 OK", [("Content-Length", "3")], [b"longer than said"]),
    ("GET", "200 OK", [("Content-Length", "0")], []),
]


@pytest.fixture
def original_and_patched(monkeypatch):
    """Responses as gunicorn sends them, then with the one-write first chunk."""
    monkeypatch.setattr(wsgi.Response, "write", wsgi.Response.write)  # undone after the test
    # The date header moves with the clock: freeze it for the comparison.
    monkeypatch.setattr("gunicorn.util.http_date", lambda *_: "Wed, 02 Dec 2026 12:00:00 GMT")
    original = [respond(*case) for case in CASES]
    send_headers_with_body()
    patched = [respond(*case) for case in CASES]
    return original, patched


def test_the_same_bytes_leave_and_a_plain_response_in_one_call(original_and_patched):
    original, patched = original_and_patched
    for before, after in zip(original, patched, strict=True):
        assert b"".join(after) == b"".join(before)
    plain_before, plain_after = original[0], patched[0]
    assert len(plain_before) == 3 and len(plain_after) == 2  # headers + first chunk together, then the rest
    assert plain_after[0].startswith(b"HTTP/1.1 200 OK\r\n") and plain_after[0].endswith(b'\r\n\r\n{"ok": true')
    # Chunked, HEAD, 204, a body longer than its length, an empty body: as gunicorn sends them.
    assert patched[1:] == original[1:]
