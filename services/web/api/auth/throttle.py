"""Per-account login throttling, kept in the state store.

Failures are counted per (account, client address). After ``LOGIN_FAILURES_BEFORE_LOCK`` failures
in ``LOGIN_FAILURE_WINDOW`` seconds that pair is locked for a time that doubles with each further
failure, capped at ``LOGIN_LOCK_MAX_SECONDS``. Keying on the pair means an attacker elsewhere can
slow only their own guesses: they cannot lock the account's owner out, let alone for good.
Unknown e-mails are throttled exactly like known ones, so throttling reveals nothing.
"""

from __future__ import annotations

import hashlib
import math

from flask import current_app, request

from ..errors import ApiError
from ..state import state_store


def _pair_id(email: str) -> str:
    raw = f"{email.strip().lower()}|{request.remote_addr or '-'}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def ensure_not_locked(email: str) -> None:
    remaining = state_store().ttl(f"login-lock:{_pair_id(email)}")
    if remaining:
        seconds = math.ceil(remaining)
        raise ApiError(
            429,
            "rate_limited",
            f"Too many failed logins; try again in {seconds} seconds",
            headers={"Retry-After": str(seconds)},
        )


def record_failure(email: str) -> None:
    config = current_app.config
    pair = _pair_id(email)
    failures = state_store().incr(f"login-failures:{pair}", config["LOGIN_FAILURE_WINDOW"])
    over = failures - config["LOGIN_FAILURES_BEFORE_LOCK"]
    if over >= 0:
        lock = min(config["LOGIN_LOCK_BASE_SECONDS"] * 2 ** min(over, 20), config["LOGIN_LOCK_MAX_SECONDS"])
        state_store().set_many([(f"login-lock:{pair}", str(failures), lock)])


def clear_failures(email: str) -> None:
    pair = _pair_id(email)
    state_store().delete(f"login-failures:{pair}", f"login-lock:{pair}")
