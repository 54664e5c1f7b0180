"""GitHub's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``."""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Iterable

PREFIX = "sha256="
# The only form GitHub sends; anything else (SHA-1's sha1=, upper case, other bytes) is refused
# before it is compared, so no header can make the comparison itself fail.
SIGNATURE_HEADER = re.compile(r"sha256=[0-9a-f]{64}")


def sign(secret: bytes, body: bytes) -> str:
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_problem(header: str | None, body: bytes, secrets: Iterable[bytes]) -> str | None:
    """Why the signature does not hold, or None when one of the secrets made it."""
    if not header:
        return "X-Hub-Signature-256 is missing"
    if not SIGNATURE_HEADER.fullmatch(header):
        return "X-Hub-Signature-256 is not sha256= and 64 lowercase hex digits"
    # Every secret is tried, so the time taken does not tell which one (if any) matched.
    matches = [hmac.compare_digest(sign(secret, body).encode(), header.encode()) for secret in secrets]
    return None if any(matches) else "X-Hub-Signature-256 does not match the body"
