"""GitHub's webhook signature: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

PREFIX = "sha256="


def sign(secret: bytes, body: bytes) -> str:
    return PREFIX + hmac.new(secret, body, hashlib.sha256).hexdigest()


def signature_problem(header: str | None, body: bytes, secrets: Iterable[bytes]) -> str | None:
    """Why the signature does not hold, or None when one of the secrets made it."""
    if not header:
        return "X-Hub-Signature-256 is missing"
    if not header.startswith(PREFIX):
        return "X-Hub-Signature-256 does not start with sha256="
    # Every secret is tried, so the time taken does not tell which one (if any) matched.
    matches = [hmac.compare_digest(sign(secret, body), header) for secret in secrets]
    return None if any(matches) else "X-Hub-Signature-256 does not match the body"
