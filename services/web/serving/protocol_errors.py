"""gunicorn's own answers (a request line or header too large, a malformed request, an error
after the app) in the API's one error shape, instead of gunicorn's HTML page.

gunicorn has no setting for its error page: every worker class writes it through
``gunicorn.util.write_error``, which ``use_json_errors`` replaces (from ``gunicorn.conf.py``, once,
in the master, before any worker exists). Behind nginx most of these never reach gunicorn (nginx's
own limits are lower and answer first, in JSON too); over HTTP/2 nginx measures a header's
compressed size, so a long one can still arrive here, and ``make dev`` faces clients directly.
"""

from __future__ import annotations

import json
import socket

import gunicorn.util

# The contract's code for each status gunicorn answers with itself (api/errors.py CODE_FOR_STATUS
# names the same codes; a unit test keeps them in step).
CODE_FOR_STATUS = {
    400: "bad_request",
    403: "forbidden",
    414: "uri_too_long",
    417: "expectation_failed",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
}


def error_body(status: int, reason: str, detail: str) -> bytes:
    # What gunicorn says of a client error may quote the request: kept short, never for a 5xx.
    message = f"{reason}: {detail[:200]}" if detail and status < 500 else reason
    code = CODE_FOR_STATUS.get(status, "internal_error" if status >= 500 else "bad_request")
    return json.dumps({"error": {"code": code, "message": message}}).encode()


def write_json_error(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    body = error_body(status_int, reason, mesg)
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        "Content-Type: application/json\r\n"
        "Cache-Control: no-store\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    gunicorn.util.write_nonblock(sock, head.encode("latin-1") + body)


def use_json_errors() -> None:
    gunicorn.util.write_error = write_json_error
