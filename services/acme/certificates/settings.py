"""The ACME service's settings, read from the environment once, at start."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

LETS_ENCRYPT = "https://acme-v02.api.letsencrypt.org/directory"
# A DNS name as a CA issues for it: labels of letters, digits and inner hyphens, at least two
# labels; a wildcard needs a DNS challenge, which the webroot cannot answer.
DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z][a-z0-9-]{0,61}[a-z0-9]")
EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class ConfigError(ValueError):
    """A setting is wrong; the message names it."""


def _whole(environ: Mapping[str, str], name: str, default: int, minimum: int = 1) -> int:
    raw = environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(f"{name}={raw!r}: a whole number of at least {minimum}")
    return int(raw)


def parse_domains(raw: str) -> tuple[str, ...]:
    """DOMAINS: names separated by commas or spaces; the first is the certificate's subject."""
    names = tuple(dict.fromkeys(name.lower() for name in re.split(r"[,\s]+", raw) if name))
    if not names:
        raise ConfigError(
            "DOMAINS is empty: name the host names to obtain a certificate for (example.org,www.example.org)"
        )
    for name in names:
        if not DOMAIN.fullmatch(name):
            raise ConfigError(f"DOMAINS: {name!r} is not a DNS name a CA issues for over HTTP (no IPs, no wildcards)")
    return names


@dataclass(frozen=True)
class Settings:
    domains: tuple[str, ...]
    # For the CA's expiry notices; empty registers without one.
    email: str
    server: str
    check_hours: int
    retry_minutes: int
    # Where nginx answers the challenges: the service waits for it before asking the CA.
    edge_url: str
    # certbot's own state (account key, every certificate it obtained): a volume.
    config_dir: Path
    # What nginx serves: live/ points at the newest pair (a volume nginx mounts read-only).
    certs_dir: Path
    # The challenge files, which nginx serves at /.well-known/acme-challenge/.
    webroot: Path
    # A certificate this close to its end makes the service unhealthy (renewal is due 30 days before).
    warn_days: int
    status_file: Path
    # Prometheus metrics (certificates/metrics.py) on this port; 0: none.
    metrics_port: int = 0

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        email = environ.get("ACME_EMAIL") or ""
        if email and not EMAIL.fullmatch(email):
            raise ConfigError(f"ACME_EMAIL={email!r} is not an e-mail address")
        server = environ.get("ACME_SERVER") or LETS_ENCRYPT
        if not server.startswith("https://"):
            raise ConfigError(f"ACME_SERVER={server!r}: an ACME directory URL, https://...")
        return cls(
            domains=parse_domains(environ.get("DOMAINS") or ""),
            email=email,
            server=server,
            check_hours=_whole(environ, "ACME_CHECK_HOURS", 12),
            retry_minutes=_whole(environ, "ACME_RETRY_MINUTES", 60),
            edge_url=(environ.get("ACME_EDGE_URL") or "http://nginx:8080").rstrip("/"),
            config_dir=Path(environ.get("ACME_CONFIG_DIR") or "/etc/letsencrypt"),
            certs_dir=Path(environ.get("ACME_CERTS_DIR") or "/certs"),
            webroot=Path(environ.get("ACME_WEBROOT_DIR") or "/var/www/acme"),
            warn_days=_whole(environ, "ACME_WARN_DAYS", 14),
            status_file=Path(environ.get("ACME_STATUS_FILE") or "/tmp/acme-status.json"),  # noqa: S108 - a tmpfs
            metrics_port=_whole(environ, "ACME_METRICS_PORT", 0, minimum=0),
        )
