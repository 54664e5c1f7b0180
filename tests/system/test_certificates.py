"""Certificates that renew themselves, for real and offline: the production stack with the ACME
service (profile "acme") obtains a certificate for DOMAINS from pebble, Let's Encrypt's own test CA
(compose/test-acme.yml), through the webroot nginx serves; nginx serves it without a restart; a
forced renewal under load is served with no failed request; a failed check and a broken pair are
each loud and leave the last good certificate served."""

from __future__ import annotations

import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from cryptography import x509

from compose_stack import QUICK_WAITS
from figures import record
from harness.polling import until
from harness.stacks import ProductionStack
from traffic import NamedHostAdapter, Traffic

DOMAIN = "shop.example.test"
# pebble's root of this start, fetched over its management API (from the acme container, which
# trusts pebble's TLS); the certificates it issues chain to it through the intermediate they carry.
PEBBLE_ROOT = (
    "import ssl, urllib.request; "
    "context = ssl.create_default_context(cafile='/pebble-tls/ca.pem'); "
    "print(urllib.request.urlopen('https://pebble:15000/roots/0', context=context).read().decode())"
)


class CertifiedStack(ProductionStack):
    """The production stack with the ACME service pointed at pebble, for ``DOMAIN``."""

    def certificates(self, *args: str, environment: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        settings = [arg for name, value in (environment or {}).items() for arg in ("-e", f"{name}={value}")]
        return self.compose("exec", "-T", *settings, "acme", "certificates", *args)

    def as_acme(self, script: str) -> subprocess.CompletedProcess[str]:
        """A shell command in the acme container as its own user (the owner of the volumes)."""
        return self.compose("exec", "-T", "--user", "10005:101", "acme", "sh", "-c", script)

    def pebble_root(self, directory: Path) -> Path:
        fetched = self.compose("exec", "-T", "acme", "python3", "-c", PEBBLE_ROOT)
        assert fetched.returncode == 0, fetched.stderr
        root = directory / "pebble-root.pem"
        root.write_text(fetched.stdout)
        return root

    def served(self, root: Path | None = None) -> x509.Certificate:
        """The certificate nginx serves for DOMAIN; with ``root``, only if it verifies against it."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        if root:
            context.load_verify_locations(cafile=str(root))
        else:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        with (
            socket.create_connection(("127.0.0.1", self.https_port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=DOMAIN) as tls,
        ):
            der = tls.getpeercert(binary_form=True)
        assert der
        return x509.load_der_x509_certificate(der)

    def issued_by_pebble(self) -> x509.Certificate | None:
        certificate = self.served()
        return certificate if "Pebble" in certificate.issuer.rfc4514_string() else None


@pytest.fixture(scope="module")
def stack(compose_ready, tmp_path_factory) -> Iterator[CertifiedStack]:
    settings = {"COMPOSE_PROFILES": "acme", "DOMAINS": DOMAIN, "CERT_WATCH_SECONDS": "5"}
    with CertifiedStack(
        "flask-stack-acmetest",
        tmp_path_factory.mktemp("acme"),
        overlays=["compose/test-acme.yml", QUICK_WAITS],
        settings=settings,
    ) as started:
        # The first certificate: the service waits for nginx, asks pebble, which fetches the
        # challenge from nginx as shop.example.test; nginx then serves it within 5 s.
        if not until(started.issued_by_pebble, timeout=120, interval=1):
            pytest.fail(
                "no certificate from pebble was served:\n"
                + started.compose("logs", "acme", "nginx", "pebble").stdout[-6000:]
            )
        yield started


def serial(certificate: x509.Certificate) -> int:
    return certificate.serial_number


def test_the_edge_serves_a_certificate_the_ca_issued_for_the_domain(stack, tmp_path):
    root = stack.pebble_root(tmp_path)
    # Verified as a browser would: the chain to pebble's root, and the name.
    certificate = stack.served(root)
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert names.get_values_for_type(x509.DNSName) == [DOMAIN]
    session = requests.Session()
    session.verify, session.trust_env = str(root), False
    session.mount("https://", NamedHostAdapter(DOMAIN))
    response = session.get(f"https://127.0.0.1:{stack.https_port}/api/healthz", timeout=10)
    assert response.status_code == 200 and response.json()["status"] == "ok"
    status = stack.make("certificates")
    assert status.returncode == 0 and DOMAIN in status.stdout and format(serial(certificate), "x") in status.stdout
    assert stack.certificates("health").returncode == 0
    # nginx loaded it without a restart: the same container, started once.
    assert stack.container("nginx").attrs["RestartCount"] == 0
    assert "now serving /etc/nginx/acme/live/fullchain.pem" in stack.compose("logs", "nginx").stdout


def test_a_check_before_renewal_is_due_asks_nothing_and_changes_nothing(stack):
    before = serial(stack.served())
    checked = stack.certificates("check")
    assert checked.returncode == 0, checked.stderr
    assert "certificate unchanged, renewal not due" in checked.stderr
    time.sleep(6)  # a watcher's look
    assert serial(stack.served()) == before


def test_a_renewal_under_load_is_served_with_no_failed_request(stack, tmp_path):
    root = stack.pebble_root(tmp_path)
    before = serial(stack.served(root))
    urls = [f"https://127.0.0.1:{stack.https_port}{path}" for path in ("/api/healthz", "/")]
    # New connections meet the new certificate at once. Kept-alive ones finish their request on
    # the old one; an idle one the old worker closes is met as any HTTP/1.1 client meets an idle
    # connection closed (keepalive_timeout does it all day): its GET is sent again (counted).
    with (
        Traffic(urls, str(root), threads=3, server_name=DOMAIN) as fresh,
        Traffic(urls, str(root), threads=2, server_name=DOMAIN, keep_alive=True, retry_closed_idle=True) as kept,
    ):
        time.sleep(2)
        asked = time.monotonic()
        renewed = stack.make("certificate", "FORCE=1")
        assert renewed.returncode == 0, renewed.stderr
        assert until(lambda: serial(stack.served(root)) != before, timeout=30, interval=0.5)
        served_after = time.monotonic() - asked
        time.sleep(3)
    record(
        "certificates",
        "forced renewal under load",
        {"new connections": fresh.summary(), "kept alive": kept.summary(), "renewed and served after s": served_after},
    )
    for traffic in (fresh, kept):
        assert traffic.sent > 50, traffic.summary()
        assert traffic.failures == [], traffic.summary()
    assert format(serial(stack.served(root)), "x") in renewed.stdout


def test_a_failed_check_is_loud_and_the_last_certificate_is_served_on(stack):
    before = serial(stack.served())
    # A CA that does not answer (nothing listens there).
    failed = stack.certificates("check", "--force", environment={"ACME_SERVER": "https://pebble:14999/dir"})
    assert failed.returncode == 1 and "certificate check failed: certbot exited with 1" in failed.stderr
    unhealthy = stack.certificates("health")
    assert unhealthy.returncode == 1 and "the last check failed" in unhealthy.stderr
    assert serial(stack.served()) == before
    # The next good check (the service's own retry, or an operator's) makes it healthy again.
    assert stack.certificates("check").returncode == 0
    assert stack.certificates("health").returncode == 0


def test_a_pair_nginx_cannot_load_is_refused_and_the_last_good_one_served_on(stack):
    before = serial(stack.served())
    # A certificate beside a key that is not its own, as a half-finished copy by hand would leave.
    broken = stack.as_acme(
        "set -e; cd /certs; good=$(readlink live); mkdir broken; cp $good/fullchain.pem broken/; "
        "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out broken/privkey.pem; "
        "chmod 640 broken/privkey.pem; ln -sfn broken live.new; mv -T live.new live; echo $good"
    )
    assert broken.returncode == 0, broken.stderr
    good = broken.stdout.strip()
    try:
        assert until(
            lambda: "refused certificate /etc/nginx/acme/live/fullchain.pem" in stack.compose("logs", "nginx").stdout,
            timeout=20,
        )
        assert serial(stack.served()) == before
    finally:
        restored = stack.as_acme(f"cd /certs && ln -sfn {good} live.new && mv -T live.new live && rm -rf broken")
        assert restored.returncode == 0, restored.stderr
    assert stack.certificates("health").returncode == 0
