"""Error reporting and tracing for those who run them: each off until its one setting is given.

``SENTRY_DSN``: sentry-sdk reports unhandled errors (the JSON 500s, which our handler logs with
``log.exception``: Sentry's logging integration turns that record into an event with its traceback)
and, at ``SENTRY_TRACES_SAMPLE_RATE``, request timings. Nothing personal is sent (no bodies, no
cookies, no user addresses).

``OTEL_EXPORTER_OTLP_ENDPOINT``: OpenTelemetry traces, a span per request, sent over OTLP/HTTP to
``<endpoint>/v1/traces`` by a batching thread (the SDK restarts it in each forked gunicorn worker).
The SDK's own ``OTEL_*`` variables (sampling, batch sizes, headers) apply as documented.

Both packages are installed in the image so one variable turns either on; they are imported only then.
"""

from __future__ import annotations

import logging

from flask import Flask

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    if app.config["SENTRY_DSN"]:
        report_errors_to_sentry(app)
    if app.config["OTEL_EXPORTER_OTLP_ENDPOINT"]:
        trace_requests(app)


def report_errors_to_sentry(app: Flask) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.flask import FlaskIntegration

    sentry_sdk.init(
        dsn=app.config["SENTRY_DSN"],
        environment=app.config["MODE"],
        release=app.config["APP_VERSION"],
        traces_sample_rate=app.config["SENTRY_TRACES_SAMPLE_RATE"],
        integrations=[FlaskIntegration()],
    )
    log.info("errors are reported to Sentry (traces sampled at %s)", app.config["SENTRY_TRACES_SAMPLE_RATE"])


def trace_requests(app: Flask) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.instrumentation.flask import FlaskInstrumentor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    endpoint = app.config["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": app.config["OTEL_SERVICE_NAME"], "service.version": app.config["APP_VERSION"]}
        )
    )
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    # This app's provider, not the process-wide one: a second app (tests) gets its own.
    FlaskInstrumentor().instrument_app(app, tracer_provider=provider)  # type: ignore[no-untyped-call]  # untyped upstream
    app.extensions["tracer_provider"] = provider
    log.info("request traces go to %s", endpoint)
