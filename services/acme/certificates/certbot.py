"""certbot, run for one check: obtain the certificate when there is none (or DOMAINS changed),
renew it when it is due (30 days before its end), else leave it; then install what it holds."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from .settings import Settings

# One certificate for every name in DOMAINS, under a fixed name in certbot's state.
LINEAGE = "stack"


class CertificateError(RuntimeError):
    """certbot failed; the message holds the end of what it said."""


def command(settings: Settings, work: Path, force: bool = False) -> list[str]:
    argv = [
        "certbot",
        "certonly",
        "--non-interactive",
        "--agree-tos",
        "--webroot",
        "--webroot-path",
        str(settings.webroot),
        "--cert-name",
        LINEAGE,
        "--domains",
        ",".join(settings.domains),
        # Nothing is asked of the CA until renewal is due; a changed DOMAINS is a new certificate.
        "--keep-until-expiring",
        "--expand",
        "--server",
        settings.server,
        "--config-dir",
        str(settings.config_dir),
        "--work-dir",
        str(work / "work"),
        "--logs-dir",
        str(work / "logs"),
    ]
    argv += ["--email", settings.email, "--no-eff-email"] if settings.email else ["--register-unsafely-without-email"]
    if force:
        argv.append("--force-renewal")
    return argv


def run_certbot(settings: Settings, force: bool = False) -> Path:
    """One certbot check; the folder of the certificate it now holds (live/stack)."""
    with tempfile.TemporaryDirectory(prefix="certbot-") as work:
        result = subprocess.run(command(settings, Path(work), force), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        said = (result.stderr.strip() or result.stdout.strip()).splitlines()[-12:]
        raise CertificateError(f"certbot exited with {result.returncode}: " + " | ".join(said))
    return settings.config_dir / "live" / LINEAGE
