"""gunicorn's own answers, met directly (`make dev` has no nginx in front): JSON too."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

import pytest

from contract import assert_error


def raw_request(base_url: str, request: bytes) -> tuple[int, dict, bytes]:
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as connection:
        connection.sendall(request)
        received = b""
        while chunk := connection.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), headers, body


class RawResponse:
    """Just enough of a response for contract.assert_error."""

    def __init__(self, status: int, headers: dict, body: bytes):
        self.status_code, self.headers, self.text = status, headers, body.decode()

    def json(self):
        return json.loads(self.text)


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /api/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "uri_too_long"),
        (
            b"GET /api/healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
            431,
            "request_header_fields_too_large",
        ),
        (b"GET /api/healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400, "bad_request"),
        (
            b"POST /api/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
            "bad_request",
        ),
    ],
    ids=["request-line-too-long", "header-too-large", "bad-http-version", "bad-chunk-size"],
)
def test_gunicorns_own_errors_are_json(dev_server, request_bytes, status, code):
    response = RawResponse(*raw_request(dev_server["base_url"], request_bytes))
    assert_error(response, status, code)
    assert "<html" not in response.text
