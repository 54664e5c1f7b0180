"""Prometheus metrics of push-to-deploy, read from the ledger at each scrape.

The ledger is what the receiver and the deployer share, so the numbers are the same whichever
process answers, survive restarts, and need no counting in the request path. The receiver's
gunicorn master serves them on ``HOOK_METRICS_PORT`` (gunicorn.conf.py), apart from port 9000,
which nginx proxies: the metrics are never reachable from the edge.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from .ledger import FINISHED, Ledger
from .settings import HookSettings

# Seconds: a deploy builds an image, so it takes minutes, not milliseconds.
DURATION_BUCKETS = (30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, float("inf"))


class LedgerCollector(Collector):
    def __init__(self, ledger: Ledger, heartbeat_path: Path):
        self.ledger = ledger
        self.heartbeat_path = heartbeat_path

    def collect(self) -> Iterator[Metric]:
        finished = self.ledger.finished_deploys()
        outcomes = Counter(row["status"] for row in finished)
        deploys = CounterMetricFamily(
            "flask_stack_deploys",
            "Deploys that ended, by outcome (failed and rolled_back need a look)",
            labels=["outcome"],
        )
        last = GaugeMetricFamily(
            "flask_stack_deploy_last_finished_timestamp_seconds",
            "When the last deploy of each outcome ended",
            labels=["outcome"],
        )
        for outcome in FINISHED:
            deploys.add_metric([outcome], outcomes[outcome])
        latest: dict[str, float] = {}
        durations: dict[str, list[float]] = defaultdict(list)
        for row in finished:
            latest[row["status"]] = max(latest.get(row["status"], 0.0), row["finished_at"] or 0.0)
            if row["duration"] is not None:
                durations[row["status"]].append(row["duration"])
        for outcome, timestamp in sorted(latest.items()):
            last.add_metric([outcome], timestamp)
        yield deploys
        yield last
        yield self.duration_histogram(durations)

        queued, running = self.ledger.waiting_and_running()
        yield GaugeMetricFamily("flask_stack_deploys_queued", "Deploys waiting for the deployer", value=queued)
        yield GaugeMetricFamily("flask_stack_deploy_running", "1 while a deploy runs", value=running)

        deliveries = CounterMetricFamily(
            "flask_stack_hook_deliveries", "Signed deliveries, by what they led to", labels=["outcome"]
        )
        for outcome, count in sorted(self.ledger.delivery_outcomes().items()):
            deliveries.add_metric([outcome], count)
        yield deliveries

        try:
            beat = self.heartbeat_path.stat().st_mtime
        except OSError:
            return  # no deployer has run yet: absent, which an alert can see (absent())
        yield GaugeMetricFamily(
            "flask_stack_deployer_heartbeat_timestamp_seconds",
            "When the deployer's loop last went round (it beats between deploys)",
            value=beat,
        )

    @staticmethod
    def duration_histogram(durations: dict[str, list[float]]) -> HistogramMetricFamily:
        histogram = HistogramMetricFamily(
            "flask_stack_deploy_duration_seconds", "How long deploys ran, from start to end", labels=["outcome"]
        )
        for outcome, values in sorted(durations.items()):
            buckets = [(_bound(le), float(sum(value <= le for value in values))) for le in DURATION_BUCKETS]
            histogram.add_metric([outcome], buckets, sum_value=sum(values))
        return histogram


def _bound(le: float) -> str:
    return "+Inf" if le == float("inf") else f"{le:g}"


def serve(settings: HookSettings, address: str, port: int) -> None:
    """In the receiver's gunicorn master: answer scrapes on a thread of its own."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(LedgerCollector(Ledger(settings.ledger_path), settings.heartbeat_path))
    start_http_server(port, addr=address, registry=registry)
