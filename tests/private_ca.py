"""Certificates made on the spot for tests: a private CA issuing server certificates (TLS to
Postgres and Redis, tests/integration/test_tls_to_data.py), and self-signed pairs (the ACME
service's unit tests)."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def pem_of_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def signed(
    subject: str, issuer: str, public_key: Any, signing_key: ec.EllipticCurvePrivateKey, days: float, extension: Any
) -> bytes:
    """A certificate (PEM) for ``subject``'s ``public_key``, valid from yesterday for ``days``, with
    one ``extension``, signed by ``issuer``'s ``signing_key``."""
    now = datetime.now(UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(extension, critical=isinstance(extension, x509.BasicConstraints))
        .sign(signing_key, hashes.SHA256())
        .public_bytes(serialization.Encoding.PEM)
    )


def certificate_for(
    names: list[str],
    days: float,
    issuer: str = "Test CA",
    signing_key: ec.EllipticCurvePrivateKey | None = None,
    addresses: tuple[str, ...] = (),
) -> tuple[bytes, bytes]:
    """A certificate (PEM) for ``names`` and ``addresses``, ending ``days`` from now, signed by
    ``signing_key`` (the issuer's), or by its own key when none is given; and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    alternative_names: list[x509.GeneralName] = [x509.DNSName(name) for name in names]
    alternative_names += [x509.IPAddress(ipaddress.ip_address(address)) for address in addresses]
    extension = x509.SubjectAlternativeName(alternative_names)
    return signed(names[0], issuer, key.public_key(), signing_key or key, days, extension), pem_of_key(key)


class PrivateCa:
    """A CA of the test's own: its certificate (``pem``) is what a client is told to trust."""

    def __init__(self, name: str = "flask-stack test CA"):
        self.name = name
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.pem = signed(
            name, name, self.key.public_key(), self.key, 30, x509.BasicConstraints(ca=True, path_length=0)
        )

    def issue(self, names: list[str], addresses: tuple[str, ...] = ()) -> tuple[bytes, bytes]:
        """A server certificate for ``names`` and ``addresses`` signed by this CA, and its key."""
        return certificate_for(names, 30, self.name, self.key, addresses)
