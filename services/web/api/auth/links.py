"""Links mailed to an account's owner: reset the password, verify the address.

Each carries a token signed with FLASK_SECRET_KEY (itsdangerous), for one purpose (its salt) and
with an age limit. A reset token holds the user's id and a fingerprint of the current password
hash, so it dies when the password changes, which using it does: it works once. A verification
token holds the id and the normalised address it was sent to. The token travels in the link's
fragment (``#token=...``), which browsers never send to a server: no access log or Referer holds it.

Asking for a link answers the same (202) whether or not the account exists, does the same store
work either way, and mails from the job queue (api/mail.py): nothing tells an asker which addresses
have accounts. Asking is budgeted per client address (429 beyond) and per account (silently).
"""

from __future__ import annotations

import hashlib
import logging
import time
from datetime import UTC, datetime

from flask import current_app, request
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from ..emails import normalized
from ..errors import ApiError
from ..extensions import db
from ..mail import send_templated
from ..models import User
from ..token_store import current_token_store, keys
from .throttle import digest

log = logging.getLogger(__name__)

RESET = "password-reset"
VERIFY = "email-verify"
HOUR = 3600.0


def serializer(purpose: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=purpose)


def password_fingerprint(password_hash: str) -> str:
    return hashlib.sha256(password_hash.encode()).hexdigest()[:16]


def binding(purpose: str, user: User) -> str:
    """What a token of ``purpose`` is bound to: when it changes, the token dies."""
    return password_fingerprint(user.password_hash) if purpose == RESET else user.email_normalized


def make_token(purpose: str, user: User) -> str:
    return str(serializer(purpose).dumps([user.id, binding(purpose, user)]))


def user_for(purpose: str, token: str) -> User:
    """The active user a link's token was made for, or a 403 saying why not (the token is the
    credential here: it does not allow this, for the reason the code names)."""
    max_age = current_app.config["PASSWORD_RESET_SECONDS" if purpose == RESET else "EMAIL_VERIFY_SECONDS"]
    try:
        user_id, bound = serializer(purpose).loads(token, max_age=max_age)
    except SignatureExpired:
        raise ApiError(403, "link_expired", "This link has expired: ask for a new one") from None
    except (BadSignature, ValueError, TypeError):
        raise ApiError(403, "link_invalid", "This link is not valid, or was used already: ask for a new one") from None
    user = db.session.get(User, user_id)
    if user is None or not user.is_active or binding(purpose, user) != bound:
        raise ApiError(403, "link_invalid", "This link is not valid, or was used already: ask for a new one")
    return user


def ensure_address_budget() -> None:
    """At most MAIL_LINKS_PER_ADDRESS requests for links an hour from one client address."""
    address = digest(request.remote_addr or "-")
    count = current_token_store().incr(keys.mail_links_address(address), HOUR)
    if count > current_app.config["MAIL_LINKS_PER_ADDRESS"]:
        retry_after = int(current_token_store().ttl(keys.mail_links_address(address)) or HOUR)
        raise ApiError(
            429,
            "rate_limited",
            f"Too many links asked for from this address; try again in {retry_after} seconds",
            headers={"Retry-After": str(retry_after)},
        )


def account_budget_left(email: str) -> bool:
    """At most MAIL_LINKS_PER_ACCOUNT mails an hour to one address asked for from one client
    address, counted whether or not it has an account (the same store work either way). Per asking
    address too: otherwise anyone could spend an account's budget and quietly keep its owner's own
    reset mails from coming (what one address can mail is bounded by its own budget, loudly)."""
    asker = request.remote_addr or "-"
    count = current_token_store().incr(keys.mail_links_account(digest(f"{normalized(email)} {asker}")), HOUR)
    return bool(count <= current_app.config["MAIL_LINKS_PER_ACCOUNT"])


def mail_link(purpose: str, user: User) -> None:
    public_url = current_app.config["PUBLIC_URL"]
    if not public_url:
        log.warning("PUBLIC_URL is not set: no %s link can be mailed", purpose)
        return
    page, subject, template = {
        RESET: ("reset-password", "Reset your password", "password_reset"),
        VERIFY: ("verify-email", "Verify your e-mail address", "verify_email"),
    }[purpose]
    seconds = current_app.config["PASSWORD_RESET_SECONDS" if purpose == RESET else "EMAIL_VERIFY_SECONDS"]
    link = f"{public_url}/{page}#token={make_token(purpose, user)}"
    # A mail that could only arrive after its link expired is not sent (api/mail.py).
    send_templated(
        user.email, subject, template, time.time() + seconds, link=link, email=user.email, minutes=seconds // 60
    )


def mark_verified(user: User) -> None:
    if user.email_verified_at is None:
        user.email_verified_at = datetime.now(UTC)
