"""Prometheus metrics of the certificate nginx is given, read at each scrape: when it ends, and
whether the last check with the CA worked. Served on ``ACME_METRICS_PORT`` by the service (`run`);
a port of its container on the monitoring network, never published."""

from __future__ import annotations

import json
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .installed import served
from .settings import Settings


class CertificateCollector(Collector):
    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self) -> Iterator[Metric]:
        certificate = served(self.settings.certs_dir)
        if certificate is not None:
            ends = GaugeMetricFamily(
                "flask_stack_certificate_not_after_timestamp_seconds",
                "When the certificate nginx serves ends",
                labels=["names", "issuer"],
            )
            ends.add_metric([",".join(certificate.names), certificate.issuer], certificate.not_after.timestamp())
            yield ends
        try:
            ok = json.loads(self.settings.status_file.read_text())["ok"]
        except (OSError, ValueError, KeyError):
            return  # no check since the service started
        yield GaugeMetricFamily(
            "flask_stack_certificate_last_check_ok",
            "1 when the last check with the CA worked, 0 when it failed",
            value=int(ok),
        )


def serve(settings: Settings) -> None:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(CertificateCollector(settings))
    start_http_server(settings.metrics_port, registry=registry)
