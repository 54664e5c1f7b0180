"""A response's headers and its first body bytes leave gunicorn in one system call.

gunicorn writes the status line and headers, then the body, in two ``sendall`` calls; between them
the worker thread may wait for the GIL for milliseconds under load. A worker killed in that moment
(the kernel's OOM killer, SIGKILL, a Swarm task killed) leaves nginx a response whose headers it
has already passed on: the client gets a body cut short, which nothing can retry. Measured: one
such failure in ~2,500 requests while a Swarm web task was killed. In one call, the response is
either entirely in the kernel's socket buffer (and delivered) or not sent at all (and nginx tries
the next upstream).

Only the plain case is changed: the first write of a response with a body that is not chunked and
fits its Content-Length. gunicorn's own ``send_headers`` still renders the headers.
"""

from __future__ import annotations

from typing import Any

from gunicorn import util
from gunicorn.http import wsgi


class Collected:
    """A socket stand-in that keeps what is sent to it."""

    def __init__(self) -> None:
        self.data = b""

    def sendall(self, data: bytes) -> None:
        self.data += data


def first_write_is_plain(response: Any, data: Any) -> bool:
    return (
        not response.headers_sent
        and not response.chunked
        and not response._omits_body
        and isinstance(data, bytes)
        and bool(data)
        and response.sent == 0
        and (response.response_length is None or response.response_length >= len(data))
    )


def send_headers_with_body() -> None:
    """Install the one-write first chunk on gunicorn's Response (gunicorn.conf.py)."""
    if getattr(wsgi.Response.write, "one_write", False):
        return
    original_write = wsgi.Response.write
    send_headers = wsgi.Response.send_headers

    def write(self: Any, data: Any) -> None:
        if not first_write_is_plain(self, data):
            original_write(self, data)
            return
        sock, headers = self.sock, Collected()
        self.sock = headers
        try:
            send_headers(self)
        finally:
            self.sock = sock
        util.write(sock, headers.data + data)
        self.sent += len(data)

    write.one_write = True  # type: ignore[attr-defined]
    wsgi.Response.write = write
