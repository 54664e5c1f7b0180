"""Views that need an access token: the token is decoded once (PyJWT, pinned algorithm, leeway),
its revocation state and its user's profile come from one store round trip, and the view sees the
claims and the user through ``current_claims()`` and ``current_user``.

flask-jwt-extended still issues every token and guards the refresh endpoint (cookies, CSRF); on this
hot path its decoder would parse each token four times and load the user with an ORM query.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import ParamSpec, TypeVar, cast

import jwt
from flask import current_app, g, request
from werkzeug.local import LocalProxy

from . import token_errors
from .principal import Principal, load_principal
from .revocation import Claims, session_state

REQUIRED_CLAIMS = ["exp", "iat", "nbf", "jti", "sub", "type", "fam", "ver"]


def bearer_token() -> str:
    header = request.headers.get("Authorization")
    if not header:
        raise token_errors.missing("Missing Authorization Header")
    scheme, _, token = header.partition(" ")
    if scheme != "Bearer":
        raise token_errors.missing("expected 'Authorization: Bearer <JWT>'")
    if not token.strip():
        raise token_errors.invalid("the Authorization header has no token")
    return token.strip()


def decode_access_token(token: str) -> Claims:
    config = current_app.config
    try:
        claims: Claims = jwt.decode(
            token,
            config["JWT_SECRET_KEY"],
            algorithms=config["JWT_DECODE_ALGORITHMS"],
            leeway=config["JWT_DECODE_LEEWAY"],
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError:
        raise token_errors.expired() from None
    except jwt.InvalidTokenError as error:
        raise token_errors.invalid(why_invalid(error)) from None
    if claims["type"] != "access":
        raise token_errors.invalid("only access tokens are allowed here")
    return claims


def why_invalid(error: jwt.InvalidTokenError) -> str:
    """PyJWT's reason in our own words: its messages can quote the token's header (a crafted ``crit``
    value with a newline once became a 500 and an e-mail)."""
    if isinstance(error, jwt.MissingRequiredClaimError):
        return f"the {error.claim!r} claim is missing"  # one of REQUIRED_CLAIMS: our own text
    for kind, reason in (
        (jwt.InvalidSignatureError, "the signature does not match"),
        (jwt.ImmatureSignatureError, "it is not valid yet"),
        (jwt.InvalidAlgorithmError, "its algorithm is not allowed"),
        (jwt.DecodeError, "it is not a well-formed token"),
    ):
        if isinstance(error, kind):
            return reason
    return "it cannot be used here"


P = ParamSpec("P")
R = TypeVar("R")


def access_token_required(view: Callable[P, R]) -> Callable[P, R]:
    @wraps(view)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        claims = decode_access_token(bearer_token())
        state = session_state(claims)  # fails closed: StoreUnavailable becomes a 503
        if state.revoked:
            raise token_errors.revoked()
        principal = load_principal(int(claims["sub"]), state.profile, current_app.config["PROFILE_CACHE_SECONDS"])
        if principal is None:
            raise token_errors.user_gone()
        g.access_claims = claims
        g.principal = principal
        return view(*args, **kwargs)

    return wrapper


def current_claims() -> Claims:
    return cast(Claims, g.access_claims)


current_user: Principal = LocalProxy(lambda: g.principal)  # type: ignore[assignment]
