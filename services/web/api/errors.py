"""The one error shape: ``{"error": {"code", "message", "details"?}}``, from every layer of the app."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, jsonify
from flask_jwt_extended.exceptions import CSRFError
from flask_smorest import Api
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException

from .breaker import refused_without_trying
from .database import is_database_fault
from .jobs import JobsUnavailable
from .schemas import ErrorSchema
from .token_store import StoreMisconfigured, StoreUnavailable

log = logging.getLogger(__name__)

# Contract code for each status, whichever layer answers: the app (an HTTPException), gunicorn
# (serving/protocol_errors.py) or nginx (services/nginx/errors/*.json); a unit test keeps the three in
# step. Anything else gets a slug of its name.
CODE_FOR_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    411: "length_required",
    413: "payload_too_large",
    414: "uri_too_long",
    415: "unsupported_media_type",
    417: "expectation_failed",
    422: "validation_error",
    429: "rate_limited",
    431: "request_header_fields_too_large",
    500: "internal_error",
    501: "not_implemented",
    502: "service_unavailable",
    503: "service_unavailable",
    504: "service_unavailable",
    505: "http_version_not_supported",
}

MESSAGE_FOR_STATUS = {
    404: "The requested URL was not found",
    405: "The method is not allowed for the requested URL",
    413: "The request body is too large",
    422: "The request is invalid",
    500: "Internal server error",
}


class ApiError(Exception):
    """Raised by views to answer with the error shape."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def printable(text: str, limit: int = 200) -> str:
    """Text that came from a library or a client, fit for a message: printable characters only, short."""
    kept = "".join(character if character.isprintable() else " " for character in text)
    return kept if len(kept) <= limit else kept[: limit - 1] + "…"


def error_response(
    status: int,
    code: str,
    message: str,
    details: dict[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if details:
        error["details"] = details
    response = jsonify({"error": error})
    response.status_code = status
    for name, value in (headers or {}).items():
        response.headers[name] = value
    if status == 401 and "WWW-Authenticate" not in response.headers:
        response.headers["WWW-Authenticate"] = bearer_challenge(code)
    return response


# RFC 6750's error_description for a refused token: fixed words, never the message, which may quote a
# library or the token itself (a header must not carry what a client sent).
CHALLENGE_DESCRIPTION = {
    "token_expired": "The access token expired",
    "token_revoked": "The access token was revoked",
}


def api_error_response(error: ApiError) -> Response:
    return error_response(error.status, error.code, error.message, error.details, error.headers)


def bearer_challenge(code: str) -> str:
    """RFC 6750 challenge: bare when no token came, ``invalid_token`` when one was refused."""
    if code in {"unauthorized", "invalid_credentials"}:
        return 'Bearer realm="api"'
    description = CHALLENGE_DESCRIPTION.get(code, "The access token is invalid")
    return f'Bearer realm="api", error="invalid_token", error_description="{description}"'


def http_exception_response(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}  # webargs and flask-smorest put their details here
    messages = data.get("messages")
    headers = dict(data.get("headers") or {})
    allowed = getattr(error, "valid_methods", None)  # a MethodNotAllowed's
    if status == 405 and allowed:
        headers["Allow"] = ", ".join(allowed)
    if status == 400 and messages and "json" in messages:
        return error_response(400, "invalid_json", "The request body is not valid JSON", headers=headers)
    if status == 422:
        return error_response(
            422, "validation_error", "The request is invalid", details=flatten_messages(messages), headers=headers
        )
    code = CODE_FOR_STATUS.get(status) or error.name.lower().replace(" ", "_").replace("'", "")
    message = data.get("message") or MESSAGE_FOR_STATUS.get(status) or error.description or error.name
    return error_response(status, code, message, headers=headers)


def flatten_messages(messages: object) -> dict[str, Any]:
    """webargs nests errors by location (json, query, ...); clients want them by field."""
    if not isinstance(messages, dict):
        return {"_request": messages} if messages else {}
    flat: dict[str, Any] = {}
    for location_errors in messages.values():
        if isinstance(location_errors, dict):
            flat.update(location_errors)
        else:
            flat.setdefault("_request", []).extend(location_errors)
    return flat


class JsonErrorApi(Api):
    """flask-smorest's Api with our error shape for everything it aborts with."""

    ERROR_SCHEMA = ErrorSchema

    def handle_http_exception(self, error: HTTPException) -> Response:
        return http_exception_response(error)


def register_error_handlers(app: Flask) -> None:
    app.register_error_handler(ApiError, api_error_response)

    def unavailable(what: str, cause: BaseException, retry_after: int) -> Response:
        # The cause (host names, driver messages; never a statement's parameters: hide_parameters)
        # goes to the log with the request id, not to the client. A request the breaker refused
        # without trying adds nothing to what it logged.
        level = logging.DEBUG if refused_without_trying(cause) else logging.WARNING
        log.log(level, "%s unavailable: %s", what, cause)
        return error_response(
            503,
            "service_unavailable",
            f"The {what} is unavailable; try again shortly",
            details={"dependency": what},
            headers={"Retry-After": str(retry_after)},
        )

    @app.errorhandler(CSRFError)
    def handle_csrf_error(error: CSRFError) -> Response:
        # The refresh cookie came without the matching X-CSRF-TOKEN: a cross-site forgery, or a client
        # that does not know the protocol. The token itself is fine, so this is not a 401.
        return error_response(403, "forbidden", f"Cookie-based refresh needs the X-CSRF-TOKEN header: {error}")

    @app.errorhandler(StoreUnavailable)
    def handle_store_unavailable(error: StoreUnavailable) -> Response:
        # Fail closed: without the token store we cannot tell a revoked token from a good one.
        return unavailable("token store", error, error.retry_after)

    @app.errorhandler(JobsUnavailable)
    def handle_jobs_unavailable(error: JobsUnavailable) -> Response:
        # What the request promised (a mail) cannot be queued: the client asks again later.
        return unavailable("job queue", error, 5)

    @app.errorhandler(StoreMisconfigured)
    def handle_store_misconfigured(error: StoreMisconfigured) -> Response:
        # A configuration bug (logged with the command where it was refused), not an outage: no
        # Retry-After, since retrying cannot help; readiness fails until the configuration is mended.
        return error_response(500, "internal_error", "Internal server error")

    @app.errorhandler(Exception)
    def handle_unexpected(error: Exception) -> Response:
        if isinstance(error, HTTPException):
            return http_exception_response(error)
        log.exception("unhandled error")
        return error_response(500, "internal_error", "Internal server error")

    @app.errorhandler(SQLAlchemyError)
    def handle_database_error(error: SQLAlchemyError) -> Response:
        # Unreachable, read-only, full, over a bound, or a conflict that happened twice: a 503.
        # Anything else (a constraint no view expected, a bug) is a 500 like any other error.
        if is_database_fault(error):
            return unavailable("database", error, 5)
        return handle_unexpected(error)
