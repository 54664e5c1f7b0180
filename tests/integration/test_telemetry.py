"""A real gunicorn (the app loaded in the master, then forked) with Sentry and OpenTelemetry both
on: it starts and serves, and the spans of requests answered by its workers reach the collector
(the SDK's sending thread runs again in each worker after the fork)."""

from __future__ import annotations

import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from harness.polling import until
from http_inbox import HttpInbox

from .test_two_processes import start_gunicorn


def span_names(inbox: HttpInbox) -> list[str]:
    return [
        span.name
        for sent in inbox.posted_to("/v1/traces")
        for rs in ExportTraceServiceRequest.FromString(sent.body).resource_spans
        for ss in rs.scope_spans
        for span in ss.spans
    ]


def test_gunicorn_serves_with_sentry_and_tracing_on_and_its_workers_send_spans(app, settings):
    sentry, collector = HttpInbox(), HttpInbox()
    telemetry = {
        "SENTRY_DSN": f"http://publickey@{sentry.url.removeprefix('http://')}/42",
        "OTEL_EXPORTER_OTLP_ENDPOINT": collector.url,
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms between batches (5 s by default)
    }
    process, base = start_gunicorn({**settings, **telemetry}, workers=2)
    try:
        for _ in range(10):
            response = requests.get(f"{base}/api/healthz", timeout=10, headers={"Connection": "close"})
            assert response.status_code == 200
        assert until(lambda: span_names(collector).count("GET /api/healthz") >= 10, 30), span_names(collector)
    finally:
        process.terminate()
        process.wait(timeout=30)
        sentry.close()
        collector.close()
