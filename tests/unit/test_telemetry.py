"""Sentry and OpenTelemetry, each on with its one setting: what they send reaches a real HTTP
server standing in for Sentry's ingest and for an OTLP collector (the outside world)."""

from __future__ import annotations

import json

import pytest

from http_inbox import HttpInbox


@pytest.fixture
def inbox():
    inbox = HttpInbox()
    yield inbox
    inbox.close()


def test_nothing_is_set_up_without_its_setting(app_factory):
    app = app_factory()
    assert "tracer_provider" not in app.extensions
    import sentry_sdk

    assert not sentry_sdk.get_client().is_active()


def test_an_unhandled_error_reaches_sentry_and_the_client_gets_the_json_500(app_factory, inbox):
    import sentry_sdk

    app = app_factory(SENTRY_DSN=f"http://publickey@{inbox.url.removeprefix('http://')}/42")
    try:

        @app.get("/api/boom")
        def boom():
            raise RuntimeError("boom for sentry")

        response = app.test_client().get("/api/boom")
        assert response.status_code == 500
        assert response.get_json()["error"]["code"] == "internal_error"
        sentry_sdk.flush(timeout=10)
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)  # the next app in this process has no Sentry
    envelopes = inbox.posted_to("/api/42/envelope/")
    assert envelopes, inbox.received
    items = [json.loads(line) for envelope in envelopes for line in envelope.body.splitlines() if line.startswith(b"{")]
    events = [item for item in items if "exception" in item]
    assert events, items
    (exception,) = events[0]["exception"]["values"]
    assert exception["type"] == "RuntimeError" and exception["value"] == "boom for sentry"
    assert events[0]["environment"] == "test"
    assert "cookies" not in events[0].get("request", {})


def test_each_request_is_a_span_sent_to_the_collector(app_factory, inbox):
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    app = app_factory(OTEL_EXPORTER_OTLP_ENDPOINT=inbox.url)
    assert app.test_client().get("/api/healthz").status_code == 200
    provider = app.extensions["tracer_provider"]
    assert provider.force_flush(10_000)
    provider.shutdown()
    (sent,) = inbox.posted_to("/v1/traces")
    request = ExportTraceServiceRequest.FromString(sent.body)
    spans = [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert [span.name for span in spans] == ["GET /api/healthz"]
    resource = {a.key: a.value.string_value for a in request.resource_spans[0].resource.attributes}
    assert resource["service.name"] == "flask-stack-web"


def test_a_telemetry_backend_that_is_down_costs_the_request_nothing(app_factory, monkeypatch):
    """Sentry's ingest and the collector refuse connections: the client still gets its answers (the
    JSON 500 too), at once; the SDKs send from threads of their own and drop what they cannot."""
    import time

    import sentry_sdk

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_TIMEOUT", "1")  # the exporter's retries end sooner at shutdown
    down = HttpInbox()
    down.close()  # nothing listens there now
    app = app_factory(
        SENTRY_DSN=f"http://publickey@{down.url.removeprefix('http://')}/42", OTEL_EXPORTER_OTLP_ENDPOINT=down.url
    )
    try:

        @app.get("/api/boom")
        def boom():
            raise RuntimeError("boom while Sentry is down")

        client = app.test_client()
        started = time.monotonic()
        assert client.get("/api/healthz").status_code == 200
        assert client.get("/api/boom").get_json()["error"]["code"] == "internal_error"
        assert time.monotonic() - started < 2
        app.extensions["tracer_provider"].shutdown()  # its export fails and is logged, not raised
    finally:
        sentry_sdk.get_client().close()
        sentry_sdk.get_global_scope().set_client(None)
