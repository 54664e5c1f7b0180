"""Push-to-deploy's metrics, read from the ledger at each scrape: they move as deploys end, and the
receiver's master serves them on their own port."""

from __future__ import annotations

import os
import time

import pytest
from prometheus_client import CollectorRegistry

from harness.ports import free_port
from hook.ledger import Ledger
from hook.metrics import LedgerCollector, serve
from hook.settings import HookSettings
from scraped_metrics import sample, scrape

from .test_hook_ledger import REF, A, B, C


def registry_for(ledger: Ledger, heartbeat) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(ledger, heartbeat))
    return registry


def run(ledger: Ledger, status: str) -> int:
    """The deployer takes the waiting deploy and ends it with ``status``."""
    deploy = ledger.claim_next()
    assert deploy is not None
    ledger.finish(deploy["id"], status, "test")
    return int(deploy["id"])


def test_deploys_are_counted_by_outcome_with_their_durations(ledger, tmp_path):
    registry = registry_for(ledger, tmp_path / "deployer.heartbeat")
    value = registry.get_sample_value
    assert value("flask_stack_deploys_total", {"outcome": "failed"}) == 0
    assert value("flask_stack_deployer_heartbeat_timestamp_seconds") is None  # no deployer yet

    ledger.enqueue("github", A, REF, delivery_id="d1")
    assert value("flask_stack_deploys_queued") == 1
    run(ledger, "succeeded")
    ledger.enqueue("github", B, REF, delivery_id="d2")
    ledger.enqueue("github", C, REF, delivery_id="d3")  # supersedes B before it starts
    run(ledger, "failed")

    assert value("flask_stack_deploys_total", {"outcome": "succeeded"}) == 1
    assert value("flask_stack_deploys_total", {"outcome": "failed"}) == 1
    assert value("flask_stack_deploys_total", {"outcome": "skipped"}) == 1
    assert value("flask_stack_deploys_queued") == 0
    assert value("flask_stack_deploy_running") == 0
    # Durations of the deploys that ran (the superseded one never started).
    assert value("flask_stack_deploy_duration_seconds_count", {"outcome": "succeeded"}) == 1
    assert value("flask_stack_deploy_duration_seconds_bucket", {"outcome": "failed", "le": "30"}) == 1
    assert value("flask_stack_deploy_duration_seconds_count", {"outcome": "skipped"}) is None
    assert value("flask_stack_deploy_last_finished_timestamp_seconds", {"outcome": "failed"}) == pytest.approx(
        time.time(), abs=30
    )
    assert value("flask_stack_hook_deliveries_total", {"outcome": "accepted"}) == 3

    (tmp_path / "deployer.heartbeat").touch()
    assert value("flask_stack_deployer_heartbeat_timestamp_seconds") == pytest.approx(
        os.stat(tmp_path / "deployer.heartbeat").st_mtime
    )


def test_a_running_deploy_shows(ledger, tmp_path):
    registry = registry_for(ledger, tmp_path / "deployer.heartbeat")
    ledger.enqueue("github", A, REF)
    ledger.claim_next()
    assert registry.get_sample_value("flask_stack_deploy_running") == 1
    assert registry.get_sample_value("flask_stack_deploys_queued") == 0


def test_the_metrics_are_served_on_their_own_port(tmp_path):
    settings = HookSettings.from_environ(
        {"HOOK_DB": str(tmp_path / "hook.sqlite"), "HOOK_HEARTBEAT": str(tmp_path / "beat")}, with_secrets=False
    )
    ledger = Ledger(settings.ledger_path)
    ledger.create()
    ledger.enqueue("github", A, REF)
    run(ledger, "rolled_back")
    port = free_port()
    serve(settings, "127.0.0.1", port)
    samples = scrape(f"http://127.0.0.1:{port}/metrics")
    assert sample(samples, "flask_stack_deploys_total", outcome="rolled_back") == 1
    assert sample(samples, "flask_stack_deploys_total", outcome="succeeded") == 0
