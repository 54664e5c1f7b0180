"""Every answer to a token that cannot be used: one place for their codes and words, whichever part
refused it (``access`` for access tokens, flask-jwt-extended's loaders for the refresh endpoint).
All are 401 with a Bearer challenge (``errors.error_response``)."""

from __future__ import annotations

from ..errors import ApiError, printable


def missing(reason: str) -> ApiError:
    return ApiError(401, "unauthorized", f"Authentication required: {printable(reason)}")


def invalid(reason: str) -> ApiError:
    """``reason`` may come from a library quoting the token: kept to printable text (never a header)."""
    return ApiError(401, "token_invalid", f"Invalid token: {printable(reason)}")


def expired() -> ApiError:
    return ApiError(401, "token_expired", "Token has expired")


def revoked(message: str = "Token has been revoked") -> ApiError:
    return ApiError(401, "token_revoked", message)


def user_gone() -> ApiError:
    return ApiError(401, "token_invalid", "The token's user no longer exists or is disabled")
