"""Token revocation on top of the token store (its keys: ``api.token_store.keys``).

Three kinds of entry, read together with the user's cached profile by ``session_state`` in one
round trip (four keys):
- ``revoked``: one token, kept until that token's own expiry (plus the decode leeway);
- ``family``: every token of one login session (logout, refresh-token reuse);
- ``user-version``: a per-user counter; tokens carrying an older ``ver`` are revoked (logout-all).
A refresh token is spent by writing ``spent`` atomically; a second spend is reuse.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from flask import current_app, g

from ..token_store import StoreUnavailable, current_token_store, keys

# A decoded token's claims (sub, jti, fam, ver, exp, ...), as PyJWT returns them.
Claims = dict[str, Any]
log = logging.getLogger(__name__)


class Spend(enum.Enum):
    FIRST = "first"  # the token was unspent: rotate
    RETRY = "retry"  # spent moments ago, within the configured grace window: rotate again
    REUSED = "reused"  # spent before: the whole family has been revoked


def _leeway() -> int:
    return int(current_app.config["JWT_DECODE_LEEWAY"])


def token_ttl(claims: Claims) -> float:
    """Seconds the token can still be presented: its own ``exp``, plus the leeway the decoder allows."""
    return max(1.0, float(claims["exp"]) + _leeway() - time.time())


def family_ttl() -> float:
    """A family's newest token can live a full refresh lifetime from now."""
    return float(current_app.config["JWT_REFRESH_TOKEN_EXPIRES"] + _leeway())


@dataclass(frozen=True)
class SessionState:
    revoked: bool
    profile: str | None  # the user's cached profile, if the store has it


def session_state(claims: Claims) -> SessionState:
    """Everything a request needs to know about its token, in one store round trip (once per request)."""
    memo = g.get("session_state")
    if memo is not None and memo[0] == claims["jti"]:
        return cast(SessionState, memo[1])
    revoked, family_revoked, version, profile = current_token_store().get_many(
        [
            keys.revoked(claims["jti"]),
            keys.family(claims["fam"]),
            keys.user_version(claims["sub"]),
            keys.profile(claims["sub"]),
        ]
    )
    state = SessionState(
        revoked is not None or family_revoked is not None or claims["ver"] < int(version or 0), profile
    )
    g.session_state = (claims["jti"], state)
    return state


def is_revoked(claims: Claims) -> bool:
    return session_state(claims).revoked


def current_version(user_id: int) -> int:
    (version,) = current_token_store().get_many([keys.user_version(user_id)])
    return int(version or 0)


def revoke_session(access_claims: Claims) -> None:
    """Logout: this access token and its whole family, refresh tokens included."""
    current_token_store().set_many(
        [
            (keys.revoked(access_claims["jti"]), "logout", token_ttl(access_claims)),
            (keys.family(access_claims["fam"]), "logout", family_ttl()),
        ]
    )


def revoke_family(family: str, reason: str) -> None:
    current_token_store().set_many([(keys.family(family), reason, family_ttl())])


def revoke_all_for_user(user_id: str | int) -> int:
    """Logout everywhere: every token issued before now carries an older version."""
    return current_token_store().incr(keys.user_version(user_id))


@contextmanager
def every_session_ends_with(user_id: int) -> Iterator[None]:
    """Every session of the user ends with the change the block commits (a new password, an
    account disabled or demoted). The version is bumped before the change, so nothing changes when
    the store cannot be reached (503: fail closed), and again once it has committed: a sign-in
    that read the account before the commit read the version before that (``login`` reads the
    version first), so its token carries one the second bump has made old."""
    revoke_all_for_user(user_id)
    yield
    try:
        revoke_all_for_user(user_id)
    except StoreUnavailable as error:
        # The change has committed and every session from before it has ended; only a sign-in
        # racing the commit may keep its token while the store is away. Answering 503 now would
        # tell the client that nothing changed.
        log.error("user %s: sessions racing the change could not be ended (%s)", user_id, error)


def spend_refresh_token(claims: Claims) -> Spend:
    now = time.time()
    spent_at = current_token_store().add(keys.spent(claims["jti"]), repr(now), token_ttl(claims))
    if spent_at is None:
        return Spend.FIRST
    grace = current_app.config["JWT_REFRESH_REUSE_GRACE_SECONDS"]
    if grace > 0 and now - float(spent_at) <= grace:
        return Spend.RETRY
    revoke_family(claims["fam"], "reuse")
    return Spend.REUSED
