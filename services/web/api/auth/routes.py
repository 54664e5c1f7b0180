import logging
from typing import Any

from flask import Response, current_app, make_response
from flask_jwt_extended import get_jwt, get_jwt_request_location, jwt_required
from flask_smorest import Blueprint
from sqlalchemy.exc import IntegrityError

from .. import metrics
from ..docs import BEARER_AUTH
from ..errors import ApiError
from ..extensions import db
from ..jobs import JobsUnavailable
from ..models import Role, User
from ..schemas import ErrorSchema, UserSchema
from . import links, throttle, token_errors
from .access import access_token_required, current_claims, current_user
from .passwords import get_passwords
from .revocation import (
    Spend,
    current_version,
    every_session_ends_with,
    revoke_all_for_user,
    revoke_session,
    spend_refresh_token,
)
from .schemas import (
    AcceptedSchema,
    EmailSchema,
    LinkTokenSchema,
    LoginSchema,
    PasswordChangeSchema,
    PasswordResetSchema,
    RegisterSchema,
    TokenPairSchema,
)
from .tokens import issue_token_pair, new_family, token_response, without_refresh_cookie

log = logging.getLogger(__name__)

blp = Blueprint("auth", __name__, url_prefix="/api/auth", description="Tokens: obtain, rotate, revoke")


def invalid_credentials() -> ApiError:
    # One answer for unknown e-mail, wrong password and disabled account.
    return ApiError(401, "invalid_credentials", "Invalid email or password")


@blp.route("/register", methods=["POST"])
@blp.arguments(RegisterSchema)
@blp.response(201, UserSchema)
@blp.alt_response(409, schema=ErrorSchema, description="email_taken")
def register(data: dict[str, Any]) -> User:
    """Create an account with the default role, and mail a link that verifies its address."""
    if User.by_email(data["email"]) is not None:
        raise ApiError(409, "email_taken", "An account with this email already exists")
    user = User(email=data["email"], password_hash=get_passwords().hash(data["password"]), role=Role.default())
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:  # a concurrent registration of the same address won the race
        db.session.rollback()
        raise ApiError(409, "email_taken", "An account with this email already exists") from None
    try:
        links.mail_link(links.VERIFY, user)
    except JobsUnavailable as error:  # the account is made; its owner can ask for the link again
        log.warning("verification mail for user %s not queued: %s", user.id, error)
    return user


@blp.route("/login", methods=["POST"])
@blp.arguments(LoginSchema)
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, schema=ErrorSchema, description="invalid_credentials")
@blp.alt_response(403, schema=ErrorSchema, description="email_not_verified (with REQUIRE_VERIFIED_EMAIL)")
@blp.alt_response(429, schema=ErrorSchema, description="rate_limited, with Retry-After")
def login(data: dict[str, Any]) -> Response | dict[str, Any]:
    """Exchange email and password for an access and a refresh token."""
    email, password = data["email"], data["password"]
    attempt = throttle.Attempt(email)
    try:
        throttle.ensure_not_locked(attempt)
    except ApiError:
        metrics.LOGINS.labels("throttled").inc()
        raise
    user = User.by_email(email)
    version = 0
    if user is not None:
        # The user's token version before the password it is checked against: a change committed
        # after this read bumps the version again (every_session_ends_with), so a token issued on
        # a password read before the commit is refused after it. A new transaction, so the row
        # read now is the latest committed (REPEATABLE READ would show the first read's snapshot).
        version = current_version(user.id)
        db.session.rollback()
        user = db.session.get(User, user.id)
    if user is None:
        get_passwords().verify_dummy(password)  # same work as a real check: no timing oracle
        verified = False
    else:
        verified = get_passwords().verify(user.password_hash, password) and user.is_active
    if user is None or not verified:
        throttle.record_failure(attempt)
        metrics.LOGINS.labels("failed").inc()
        raise invalid_credentials()
    throttle.record_success(attempt)
    if current_app.config["REQUIRE_VERIFIED_EMAIL"] and not user.email_verified:
        # Only after the password: nobody learns this of an address they cannot sign in to.
        raise ApiError(403, "email_not_verified", "Verify your e-mail address first: follow the link we mailed")
    if get_passwords().needs_rehash(user.password_hash):
        user.password_hash = get_passwords().hash(password)
        db.session.commit()
    pair = issue_token_pair(user.id, family=new_family(), version=version)
    metrics.LOGINS.labels("ok").inc()
    return token_response(pair, in_cookie=data["refresh_cookie"])


@blp.route("/refresh", methods=["POST"])
@jwt_required(refresh=True, locations=["headers", "cookies"])
@blp.response(200, TokenPairSchema)
@blp.alt_response(401, schema=ErrorSchema, description="token_revoked when a spent refresh token is reused")
@blp.doc(security=BEARER_AUTH)
def refresh() -> Response | dict[str, Any]:
    """Rotate: spend this refresh token, get a new pair. Reusing a spent one revokes its family.

    The refresh token comes in Authorization, or (browsers) in its cookie with the CSRF token from
    the `csrf_refresh_token` cookie echoed in `X-CSRF-TOKEN`; the new one goes back the same way."""
    claims = get_jwt()
    from_cookie = get_jwt_request_location() == "cookies"
    if spend_refresh_token(claims) is Spend.REUSED:
        metrics.REFRESH_REUSE.inc()
        raise token_errors.revoked("Refresh token was already used; the session has been revoked")
    pair = issue_token_pair(claims["sub"], family=claims["fam"], version=claims["ver"])
    return token_response(pair, in_cookie=from_cookie)


@blp.route("/logout", methods=["POST"])
@access_token_required
@blp.response(204)
@blp.doc(security=BEARER_AUTH)
def logout() -> Response:
    """Revoke this access token and its refresh token (and clear a browser's refresh cookie)."""
    revoke_session(current_claims())
    return without_refresh_cookie(make_response("", 204))


@blp.route("/logout-all", methods=["POST"])
@access_token_required
@blp.response(204)
@blp.doc(security=BEARER_AUTH)
def logout_all() -> Response:
    """Revoke every token of this user issued before now (and clear a browser's refresh cookie)."""
    revoke_all_for_user(current_claims()["sub"])
    return without_refresh_cookie(make_response("", 204))


@blp.route("/password", methods=["POST"])
@access_token_required
@blp.arguments(PasswordChangeSchema)
@blp.response(200, TokenPairSchema)
@blp.alt_response(403, schema=ErrorSchema, description="wrong_password: the current password is not right")
@blp.alt_response(429, schema=ErrorSchema, description="rate_limited, with Retry-After (too many wrong guesses)")
@blp.doc(security=BEARER_AUTH)
def change_password(data: dict[str, Any]) -> Response | dict[str, Any]:
    """Change the caller's password. Every session of the user ends, this one too (as logout-all);
    the answer is a new token pair for this client (the refresh token in its cookie when
    `refresh_cookie`). Wrong guesses of the current password are throttled as sign-ins are, but
    apart from them: they never lock the account's sign-in."""
    user = db.session.get(User, current_user.id)
    if user is None:
        raise token_errors.user_gone()
    attempt = throttle.Attempt(user.email, purpose="password-change")
    throttle.ensure_not_locked(attempt)
    if not get_passwords().verify(user.password_hash, data["current_password"]):
        throttle.record_failure(attempt)
        raise ApiError(403, "wrong_password", "The current password is not right")
    # The same password again ends the sessions as a change does, without a second hash to pay for.
    same = data["new_password"] == data["current_password"]
    new_hash = user.password_hash if same else get_passwords().hash(data["new_password"])
    with every_session_ends_with(user.id):
        user.password_hash = new_hash
        db.session.commit()
    pair = issue_token_pair(user.id, family=new_family(), version=current_version(user.id))
    return token_response(pair, in_cookie=data["refresh_cookie"])


LINK_ON_ITS_WAY = {"message": "If an account has this address, a link is on its way to it"}


@blp.route("/password-reset", methods=["POST"])
@blp.arguments(EmailSchema)
@blp.response(202, AcceptedSchema)
@blp.alt_response(429, schema=ErrorSchema, description="rate_limited: too many links asked for from this address")
def request_password_reset(data: dict[str, Any]) -> dict[str, str]:
    """Mail a link to reset the password. The same answer whether or not the account exists."""
    links.ensure_address_budget()
    if links.account_budget_left(data["email"]):
        user = User.by_email(data["email"])
        if user is not None and user.is_active:
            links.mail_link(links.RESET, user)
    return LINK_ON_ITS_WAY


@blp.route("/password-reset/confirm", methods=["POST"])
@blp.arguments(PasswordResetSchema)
@blp.response(204)
@blp.alt_response(
    403, schema=ErrorSchema, description="link_invalid (used, or the password changed since), link_expired"
)
def confirm_password_reset(data: dict[str, Any]) -> Response:
    """Set a new password with a reset link's token; every session of the user ends. The link
    proved the address too: it counts as verified."""
    user = links.user_for(links.RESET, data["token"])
    new_hash = get_passwords().hash(data["new_password"])
    with every_session_ends_with(user.id):
        user.password_hash = new_hash
        links.mark_verified(user)
        db.session.commit()
    return make_response("", 204)


@blp.route("/verify", methods=["POST"])
@blp.arguments(LinkTokenSchema)
@blp.response(204)
@blp.alt_response(403, schema=ErrorSchema, description="link_invalid, link_expired")
def verify_email(data: dict[str, Any]) -> Response:
    """Mark the address verified with a verification link's token (no sign-in needed)."""
    user = links.user_for(links.VERIFY, data["token"])
    links.mark_verified(user)
    db.session.commit()
    return make_response("", 204)


@blp.route("/verify/resend", methods=["POST"])
@blp.arguments(EmailSchema)
@blp.response(202, AcceptedSchema)
@blp.alt_response(429, schema=ErrorSchema, description="rate_limited: too many links asked for from this address")
def resend_verification(data: dict[str, Any]) -> dict[str, str]:
    """Mail the verification link again (no sign-in needed: with REQUIRE_VERIFIED_EMAIL an
    unverified user cannot sign in). The same answer whether or not the account exists."""
    links.ensure_address_budget()
    if links.account_budget_left(data["email"]):
        user = User.by_email(data["email"])
        if user is not None and user.is_active and not user.email_verified:
            links.mail_link(links.VERIFY, user)
    return LINK_ON_ITS_WAY
