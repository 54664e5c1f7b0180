"""The ACME service's settings, certbot command, hand-over to nginx and health (services/acme),
without a CA; the system tier obtains and renews real certificates from pebble
(test_certificates.py)."""

from __future__ import annotations

import functools
import http.server
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from certificates.__main__ import healthy, record_status
from certificates.certbot import command
from certificates.edge import wait_for_edge
from certificates.installed import install, live, read_certificate
from certificates.settings import LETS_ENCRYPT, ConfigError, Settings
from private_ca import certificate_for

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def settings_for(tmp_path: Path, **environ: str) -> Settings:
    return Settings.from_environ(
        {
            "DOMAINS": "example.org",
            "ACME_CONFIG_DIR": str(tmp_path / "letsencrypt"),
            "ACME_CERTS_DIR": str(tmp_path / "certs"),
            "ACME_WEBROOT_DIR": str(tmp_path / "webroot"),
            "ACME_STATUS_FILE": str(tmp_path / "status.json"),
            **environ,
        }
    )


def lineage_with(tmp_path: Path, names: list[str], days: float = 90) -> Path:
    """certbot's live/stack folder holding a new pair, as after an issuance or a renewal."""
    lineage = tmp_path / "letsencrypt" / "live" / "stack"
    lineage.mkdir(parents=True, exist_ok=True)
    chain, key = certificate_for(names, days)
    (lineage / "fullchain.pem").write_bytes(chain)
    (lineage / "privkey.pem").write_bytes(key)
    return lineage


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("example.org", ("example.org",)),
        ("Example.org, www.example.org", ("example.org", "www.example.org")),
        ("a.example.org b.example.org,a.example.org", ("a.example.org", "b.example.org")),
    ],
)
def test_domains_are_names_separated_by_commas_or_spaces(tmp_path, raw, expected):
    settings = settings_for(tmp_path, DOMAINS=raw)
    assert settings.domains == expected
    assert settings.server == LETS_ENCRYPT and settings.check_hours == 12


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"DOMAINS": ""}, "DOMAINS is empty"),
        ({"DOMAINS": "*.example.org"}, "no IPs, no wildcards"),
        ({"DOMAINS": "203.0.113.9"}, "no IPs, no wildcards"),
        ({"DOMAINS": "localhost"}, "'localhost'"),
        ({"DOMAINS": "example.org;rm"}, "'example.org;rm'"),
        ({"ACME_EMAIL": "nobody"}, "ACME_EMAIL"),
        ({"ACME_SERVER": "http://ca.example/dir"}, "ACME_SERVER"),
        ({"ACME_CHECK_HOURS": "0"}, "ACME_CHECK_HOURS"),
    ],
)
def test_wrong_settings_are_refused_by_name(tmp_path, environ, named):
    with pytest.raises(ConfigError, match=named):
        settings_for(tmp_path, **environ)


def test_certbot_obtains_or_renews_only_when_due_and_force_renews_now(tmp_path):
    settings = settings_for(tmp_path, DOMAINS="example.org,www.example.org", ACME_EMAIL="ops@example.org")
    argv = command(settings, tmp_path / "work")
    assert argv[:2] == ["certbot", "certonly"]
    assert "--keep-until-expiring" in argv and "--force-renewal" not in argv
    assert argv[argv.index("--domains") + 1] == "example.org,www.example.org"
    assert argv[argv.index("--webroot-path") + 1] == str(tmp_path / "webroot")
    assert argv[argv.index("--email") + 1] == "ops@example.org"
    assert "--force-renewal" in command(settings, tmp_path / "work", force=True)
    anonymous = command(settings_for(tmp_path), tmp_path / "work")
    assert "--register-unsafely-without-email" in anonymous and "--email" not in anonymous


def test_a_new_pair_is_handed_over_in_one_rename_and_an_unchanged_one_is_left(tmp_path):
    certs = tmp_path / "certs"
    certs.mkdir()
    lineage = lineage_with(tmp_path, ["example.org"])
    first = install(lineage, certs, NOW)
    assert first is not None
    assert live(certs).is_symlink() and live(certs).resolve() == first.resolve()
    assert (live(certs) / "privkey.pem").read_bytes() == (lineage / "privkey.pem").read_bytes()
    # nginx's group may read the key; nobody else.
    assert (first / "privkey.pem").stat().st_mode & 0o777 == 0o640
    assert certs.stat().st_mode & 0o777 == 0o750
    assert install(lineage, certs, NOW + timedelta(hours=12)) is None
    # Renewals: the newest and the one before are kept.
    generations = [first]
    for hours in (24, 48, 72):
        lineage_with(tmp_path, ["example.org"])
        installed = install(lineage, certs, NOW + timedelta(hours=hours))
        assert installed is not None
        generations.append(installed)
    assert live(certs).resolve() == generations[-1].resolve()
    assert sorted(path.name for path in certs.iterdir()) == sorted([generations[-2].name, generations[-1].name, "live"])


def test_the_served_certificate_is_described(tmp_path):
    chain, _key = certificate_for(["example.org", "www.example.org"], days=60, issuer="Pebble Intermediate CA")
    (tmp_path / "fullchain.pem").write_bytes(chain)
    certificate = read_certificate(tmp_path / "fullchain.pem")
    assert certificate.names == ("example.org", "www.example.org")
    assert certificate.issuer == "Pebble Intermediate CA"
    assert 59 < certificate.days_left(datetime.now(UTC)) <= 60
    assert "example.org, www.example.org; issued by Pebble Intermediate CA" in certificate.describe(datetime.now(UTC))


def test_a_failed_check_or_a_certificate_near_its_end_is_unhealthy(tmp_path):
    settings = settings_for(tmp_path)
    assert healthy(settings) == (True, "ok")  # nothing checked yet: waiting is not a fault
    record_status(settings, False, "certbot exited with 1: Timeout during connect")
    ok, detail = healthy(settings)
    assert not ok and "Timeout during connect" in detail
    record_status(settings, True, "1f")
    settings.certs_dir.mkdir()
    install(lineage_with(tmp_path, ["example.org"], days=10), settings.certs_dir, NOW)
    ok, detail = healthy(settings)
    assert not ok and "ends in" in detail
    install(lineage_with(tmp_path, ["example.org"], days=80), settings.certs_dir, NOW + timedelta(days=1))
    assert healthy(settings) == (True, "ok")
    assert json.loads(settings.status_file.read_text())["ok"] is True


@pytest.fixture
def edge(tmp_path) -> Iterator[str]:
    """A real HTTP server on loopback serving the webroot, as nginx does."""
    webroot = tmp_path / "webroot"
    webroot.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(webroot))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_the_service_waits_until_the_edge_serves_its_challenge_folder(tmp_path, edge):
    served = settings_for(tmp_path, ACME_EDGE_URL=edge)
    assert wait_for_edge(served, timeout=10, interval=0.1)
    # The probe is gone once seen.
    assert list((tmp_path / "webroot/.well-known/acme-challenge").iterdir()) == []
    # An edge that serves another folder never shows the probe.
    elsewhere = settings_for(tmp_path, ACME_EDGE_URL=edge, ACME_WEBROOT_DIR=str(tmp_path / "elsewhere"))
    assert not wait_for_edge(elsewhere, timeout=0.5, interval=0.1)


def test_the_served_certificates_end_and_the_last_check_are_metrics(tmp_path):
    from prometheus_client import CollectorRegistry

    from certificates.metrics import CertificateCollector

    settings = settings_for(tmp_path)
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CertificateCollector(settings))
    ends = "flask_stack_certificate_not_after_timestamp_seconds"
    assert registry.get_sample_value("flask_stack_certificate_last_check_ok") is None
    assert not [s for m in registry.collect() for s in m.samples if s.name == ends]  # none yet
    settings.certs_dir.mkdir()
    install(lineage_with(tmp_path, ["example.org", "www.example.org"], days=20), settings.certs_dir, NOW)
    record_status(settings, True, "1f")
    served = read_certificate(live(settings.certs_dir) / "fullchain.pem")
    labels = {"names": "example.org,www.example.org", "issuer": "Test CA"}
    assert registry.get_sample_value(ends, labels) == served.not_after.timestamp()
    assert registry.get_sample_value("flask_stack_certificate_last_check_ok") == 1
    record_status(settings, False, "certbot exited with 1")
    assert registry.get_sample_value("flask_stack_certificate_last_check_ok") == 0
