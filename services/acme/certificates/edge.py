"""Before the CA is asked, the edge must serve the challenge folder: on a first start nginx comes
up after this service (it waits for web), and a challenge the CA cannot fetch counts against the
CA's limit of failed validations (Let's Encrypt: 5 an hour)."""

from __future__ import annotations

import logging
import secrets
import time
import urllib.error
import urllib.request

from .settings import Settings

log = logging.getLogger("acme")


def challenges_served(settings: Settings, token: str, content: str) -> bool:
    url = f"{settings.edge_url}/.well-known/acme-challenge/{token}"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the edge's own http URL
            return bool(response.read().decode() == content)
    except (urllib.error.URLError, OSError, UnicodeDecodeError):
        return False


def wait_for_edge(settings: Settings, timeout: float = 600, interval: float = 2) -> bool:
    """Put a file in the webroot and wait until the edge serves it; False when it never did (the
    CA is asked all the same: it reaches nginx by its public address, which may differ)."""
    folder = settings.webroot / ".well-known" / "acme-challenge"
    folder.mkdir(parents=True, exist_ok=True)
    token = f"probe-{secrets.token_urlsafe(16)}"
    content = secrets.token_urlsafe(16)
    probe = folder / token
    probe.write_text(content)
    probe.chmod(0o644)
    deadline = time.monotonic() + timeout
    warned = 0.0
    try:
        while not challenges_served(settings, token, content):
            if time.monotonic() > deadline:
                log.warning(
                    "the edge (%s) does not serve the challenge folder; asking the CA anyway", settings.edge_url
                )
                return False
            if time.monotonic() - warned > 60:
                log.info("waiting for the edge (%s) to serve the challenge folder", settings.edge_url)
                warned = time.monotonic()
            time.sleep(interval)
        return True
    finally:
        probe.unlink(missing_ok=True)
