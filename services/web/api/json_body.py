"""The gate every API request body passes before any view: JSON or nothing.

A body in another media type is a 415; a body that does not parse (bad syntax, bad UTF-8, nesting
deep enough to exhaust the parser) is a 400 ``invalid_json``. Size is Flask's ``MAX_CONTENT_LENGTH``
(413). Requests without a body pass; a view that needs one then answers 422.
"""

from __future__ import annotations

import json

from flask import request
from werkzeug.exceptions import HTTPException

from .errors import ApiError


def check_json_body() -> None:
    if not request.path.startswith("/api/") or request.method in {"GET", "HEAD", "OPTIONS"}:
        return
    if not (request.content_length or request.headers.get("Transfer-Encoding")):
        return
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "Send the request body as application/json")
    try:
        body = request.get_data(cache=True)
    except HTTPException:
        raise  # 413: over MAX_CONTENT_LENGTH
    except Exception:  # noqa: BLE001 - each WSGI server raises its own types here
        # The server could not read it (a malformed chunked encoding, a connection cut short):
        # the client's fault, not ours.
        raise ApiError(400, "bad_request", "The request body could not be read") from None
    try:
        json.loads(body)
    except (ValueError, RecursionError):
        raise ApiError(400, "invalid_json", "The request body is not valid JSON") from None
