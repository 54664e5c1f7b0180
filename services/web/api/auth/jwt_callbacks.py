"""Every flask-jwt-extended loader, overridden: one error shape, 401 and a Bearer challenge for all
token failures (the library's defaults mix 401 and 422 with ``{"msg": ...}`` bodies). The library
guards the refresh endpoint; access-token views use ``api.auth.access`` with the same answers."""

from __future__ import annotations

from flask import Response, current_app
from flask_jwt_extended import JWTManager

from ..errors import api_error_response
from . import token_errors
from .principal import Principal, load_principal
from .revocation import Claims, is_revoked, session_state


def register_jwt_callbacks(jwt: JWTManager) -> None:
    @jwt.user_identity_loader
    def identity(user_id: object) -> str:
        return str(user_id)  # PyJWT >= 2.10 insists that ``sub`` is a string

    @jwt.user_lookup_loader
    def load_user(_header: Claims, claims: Claims) -> Principal | None:
        # The profile came with the revocation check: no second round trip.
        cached = session_state(claims).profile
        return load_principal(int(claims["sub"]), cached, current_app.config["PROFILE_CACHE_SECONDS"])

    @jwt.token_in_blocklist_loader
    def token_revoked(_header: Claims, claims: Claims) -> bool:
        # Raises StoreUnavailable when the store is down: the app answers 503, never "not revoked".
        return is_revoked(claims)

    @jwt.unauthorized_loader
    def missing_token(reason: str) -> Response:
        return api_error_response(token_errors.missing(reason))

    @jwt.invalid_token_loader
    def invalid_token(reason: str) -> Response:
        # Malformed, tampered, wrong type, wrong algorithm, not yet valid.
        return api_error_response(token_errors.invalid(reason))

    @jwt.expired_token_loader
    def expired_token(_header: Claims, _claims: Claims) -> Response:
        return api_error_response(token_errors.expired())

    @jwt.revoked_token_loader
    def revoked_token(_header: Claims, _claims: Claims) -> Response:
        return api_error_response(token_errors.revoked())

    @jwt.needs_fresh_token_loader
    def needs_fresh_token(_header: Claims, _claims: Claims) -> Response:
        return api_error_response(token_errors.invalid("a fresh token is required"))

    @jwt.token_verification_failed_loader
    def verification_failed(_header: Claims, _claims: Claims) -> Response:
        return api_error_response(token_errors.invalid("its claims failed verification"))

    @jwt.user_lookup_error_loader
    def user_gone(_header: Claims, _claims: Claims) -> Response:
        return api_error_response(token_errors.user_gone())
