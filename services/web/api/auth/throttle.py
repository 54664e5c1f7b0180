"""Login throttling, kept in the token store. Two limits, neither of which can lock the owner out:

- **Per (account, client address)**: after ``LOGIN_FAILURES_BEFORE_LOCK`` failures in
  ``LOGIN_FAILURE_WINDOW`` seconds, that pair is locked for a time that doubles with each further
  failure, capped at ``LOGIN_LOCK_MAX_SECONDS``. One address guessing one account's password slows
  to a crawl; the owner, elsewhere, is not touched.
- **Per account, from any address**: after ``LOGIN_ACCOUNT_FAILURES_BEFORE_LOCK`` failures in the
  same window (many addresses spraying one account), the account is locked for
  ``LOGIN_ACCOUNT_LOCK_SECONDS``, never more: about that many guesses per window in all. Addresses the
  account signed in from in the last ``LOGIN_KNOWN_ADDRESS_DAYS`` pass this lock, so the owner at
  home is not slowed; from a new address the owner waits that short lock at most.

Unknown e-mails are throttled exactly like known ones, so throttling reveals nothing. A check costs
one store round trip.
"""

from __future__ import annotations

import hashlib
import math
import time

from flask import current_app, request

from ..emails import normalized
from ..errors import ApiError
from ..token_store import current_token_store, keys


def digest(*parts: str) -> str:
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


class Attempt:
    """A login for ``email`` from this request's client address. Another ``purpose`` (a password
    change's guess of the current password) is counted and locked apart: a stolen access token
    guessing the password is slowed the same way, without locking the owner's sign-in."""

    SIGN_IN = "sign-in"

    def __init__(self, email: str, purpose: str = SIGN_IN):
        account = normalized(email)
        scope = () if purpose == self.SIGN_IN else (purpose,)
        self.account = digest(*scope, account)
        self.pair = digest(*scope, account, request.remote_addr or "-")


def _refuse(unlock_at: float, why: str) -> ApiError:
    seconds = max(1, math.ceil(unlock_at - time.time()))
    message = f"Too many failed attempts {why}; try again in {seconds} seconds"
    return ApiError(429, "rate_limited", message, headers={"Retry-After": str(seconds)})


def ensure_not_locked(attempt: Attempt) -> None:
    pair_lock, account_lock, known = current_token_store().get_many(
        [keys.login_lock(attempt.pair), keys.login_account_lock(attempt.account), keys.login_known(attempt.pair)]
    )
    # A lock's value is when it ends (Unix time), for Retry-After.
    if pair_lock is not None:
        raise _refuse(float(pair_lock), "from this address")
    if account_lock is not None and known is None:
        raise _refuse(float(account_lock), "for this account")


def record_failure(attempt: Attempt) -> None:
    config = current_app.config
    window = config["LOGIN_FAILURE_WINDOW"]
    now = time.time()
    locks = []
    pair_failures = current_token_store().incr(keys.login_failures(attempt.pair), window)
    pair_over = pair_failures - config["LOGIN_FAILURES_BEFORE_LOCK"]
    if pair_over >= 0:
        seconds = min(config["LOGIN_LOCK_BASE_SECONDS"] * 2 ** min(pair_over, 20), config["LOGIN_LOCK_MAX_SECONDS"])
        locks.append((keys.login_lock(attempt.pair), str(now + seconds), seconds))
    account_failures = current_token_store().incr(keys.login_account_failures(attempt.account), window)
    if account_failures >= config["LOGIN_ACCOUNT_FAILURES_BEFORE_LOCK"]:
        seconds = config["LOGIN_ACCOUNT_LOCK_SECONDS"]
        locks.append((keys.login_account_lock(attempt.account), str(now + seconds), seconds))
    if locks:
        current_token_store().set_many(locks)


def record_success(attempt: Attempt) -> None:
    """This address's failures are forgotten, and it is known to the account from now on."""
    known_for = current_app.config["LOGIN_KNOWN_ADDRESS_DAYS"] * 24 * 3600
    current_token_store().delete(keys.login_failures(attempt.pair), keys.login_lock(attempt.pair))
    current_token_store().set_many([(keys.login_known(attempt.pair), "1", known_for)])
