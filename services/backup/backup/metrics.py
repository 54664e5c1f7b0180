"""Prometheus metrics of the backups, read from the backup folder at each scrape: when the newest
dump was taken (a dump is there only once it and its checksum are written), its size, how many are
kept, and whether the last attempt worked. Served on ``BACKUP_METRICS_PORT`` by the service
(`run`); a port of its container on the monitoring network, never published."""

from __future__ import annotations

import json
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .dumps import listed
from .settings import Settings


class BackupCollector(Collector):
    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        dumps = listed(self.settings)
        yield GaugeMetricFamily("flask_stack_backups", "Dumps in the backup folder", value=len(dumps))
        if dumps:
            newest = dumps[0]
            yield GaugeMetricFamily(
                "flask_stack_backup_last_success_timestamp_seconds",
                "When the newest dump was taken",
                value=newest.at.timestamp(),
            )
            yield GaugeMetricFamily(
                "flask_stack_backup_last_size_bytes", "Size of the newest dump", value=newest.path.stat().st_size
            )
        try:
            ok = json.loads(self.settings.status_file.read_text())["ok"]
        except (OSError, ValueError, KeyError):
            return  # no attempt since the service started
        yield GaugeMetricFamily(
            "flask_stack_backup_last_attempt_ok",
            "1 when the last backup attempt worked, 0 when it failed",
            value=int(ok),
        )


def serve(settings: Settings) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BackupCollector(settings))
    start_http_server(settings.metrics_port, registry=registry)
