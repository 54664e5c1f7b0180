"""What nginx serves: each certificate certbot obtains is copied into a folder of its own in the
certificates volume, then live/ is pointed at it in one rename, so nginx never sees a certificate
beside the wrong key. nginx (group 101) may read the key; nobody else may."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

# The pair before the newest is kept, for an operator who must go back by hand.
KEEP = 2


@dataclass(frozen=True)
class Certificate:
    names: tuple[str, ...]
    issuer: str
    serial: str
    not_after: datetime

    def days_left(self, now: datetime) -> float:
        return (self.not_after - now).total_seconds() / 86400

    def describe(self, now: datetime) -> str:
        return (
            f"{', '.join(self.names)}; issued by {self.issuer}; serial {self.serial}; "
            f"valid until {self.not_after.isoformat(timespec='seconds')} ({self.days_left(now):.0f} days)"
        )


def read_certificate(path: Path) -> Certificate:
    """The first certificate of a PEM file (a full chain starts with the server's own)."""
    certificate = x509.load_pem_x509_certificate(path.read_bytes())
    try:
        names = tuple(
            certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value.get_values_for_type(
                x509.DNSName
            )
        )
    except x509.ExtensionNotFound:
        names = ()
    issuer = certificate.issuer.get_attributes_for_oid(NameOID.COMMON_NAME)
    # Debian's python3-cryptography (38) has only the naive form; newer ones deprecate it.
    not_after = getattr(certificate, "not_valid_after_utc", None) or certificate.not_valid_after.replace(tzinfo=UTC)
    return Certificate(
        names=names,
        issuer=str(issuer[0].value) if issuer else certificate.issuer.rfc4514_string(),
        serial=format(certificate.serial_number, "x"),
        not_after=not_after,
    )


def live(certs_dir: Path) -> Path:
    return certs_dir / "live"


def served(certs_dir: Path) -> Certificate | None:
    """The certificate nginx is given, if there is one yet."""
    chain = live(certs_dir) / "fullchain.pem"
    return read_certificate(chain) if chain.exists() else None


def _write(path: Path, content: bytes, mode: int) -> None:
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(descriptor, "wb") as file:
        file.write(content)
    path.chmod(mode)  # whatever the umask took away


def install(lineage: Path, certs_dir: Path, now: datetime) -> Path | None:
    """Copy certbot's current pair (``lineage``: live/<name>) to be served; the new folder, or None
    when nginx serves that pair already."""
    chain = (lineage / "fullchain.pem").read_bytes()
    key = (lineage / "privkey.pem").read_bytes()
    current = live(certs_dir)
    if (
        current.exists()
        and (current / "fullchain.pem").read_bytes() == chain
        and (current / "privkey.pem").read_bytes() == key
    ):
        return None
    certs_dir.chmod(0o750)  # the acme user and nginx's group
    generation = certs_dir / now.strftime("%Y%m%dT%H%M%S%fZ")
    generation.mkdir(mode=0o750)
    generation.chmod(0o750)
    _write(generation / "privkey.pem", key, 0o640)
    _write(generation / "fullchain.pem", chain, 0o644)
    pointer = certs_dir / "live.new"
    pointer.unlink(missing_ok=True)
    pointer.symlink_to(generation.name)
    os.replace(pointer, current)
    generations = sorted(
        (path for path in certs_dir.iterdir() if path.is_dir() and not path.is_symlink()), reverse=True
    )
    for old in generations[KEEP:]:
        shutil.rmtree(old)
    return generation
