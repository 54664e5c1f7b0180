"""Prometheus metrics of the API: requests, the token store, circuit breakers, the database pool,
sign-ins and refresh-token reuse.

Under gunicorn each worker writes its own values (prometheus_client's multiprocess mode: gunicorn.conf.py
sets PROMETHEUS_MULTIPROC_DIR before anything imports this module) and the master serves the sum of
every worker's on METRICS_PORT (serving/metrics.py): a port of the container, on the networks web
is on, never through nginx. Without gunicorn (tests, `flask`) the values live in this process.

Routes are labelled by their rule (``/api/users/<int(max=2147483647):user_id>``), never by the path a
client sent, so a scan of made-up URLs adds one series ("unmatched"), not thousands.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

from flask import Flask, Response, g, request
from prometheus_client import Counter, Gauge, Histogram
from sqlalchemy import Engine, event

REQUESTS = Counter("flask_stack_http_requests_total", "Requests the app answered", ["method", "route", "status"])
LATENCY = Histogram(
    "flask_stack_http_request_duration_seconds",
    "Time the app took to answer",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge("flask_stack_http_requests_in_flight", "Requests being answered", multiprocess_mode="livesum")
STORE_LATENCY = Histogram(
    "flask_stack_token_store_seconds",
    "Token store round trips",
    ["operation"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)
STORE_ERRORS = Counter("flask_stack_token_store_errors_total", "Token store calls that failed", ["operation"])
STORE_DENIED = Counter(
    "flask_stack_token_store_denied_total",
    "Token store calls the store refused to run (a configuration bug: Redis's ACL)",
    ["operation"],
)
BREAKER_OPEN = Gauge(
    "flask_stack_circuit_open",
    "1 while a circuit breaker is open in any worker (requests fail fast with 503)",
    ["breaker"],
    multiprocess_mode="livemax",
)
DB_IN_USE = Gauge(
    "flask_stack_db_connections_in_use", "Database connections checked out of the pool", multiprocess_mode="livesum"
)
DB_OVERFLOW = Gauge(
    "flask_stack_db_pool_overflow",
    "Connections open beyond the pool's size (at the last checkout, per worker, summed)",
    multiprocess_mode="livesum",
)
LOGINS = Counter("flask_stack_logins_total", "Sign-ins, by outcome: ok, failed, throttled", ["outcome"])
JOBS = Counter(
    "flask_stack_jobs_total",
    "Background jobs run by the worker, by task and outcome: succeeded, retried (put off), failed",
    ["task", "outcome"],
)
JOB_SECONDS = Histogram(
    "flask_stack_job_duration_seconds",
    "Time a background job took to run (one try)",
    ["task"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
REFRESH_REUSE = Counter(
    "flask_stack_refresh_reuse_total", "Spent refresh tokens presented again (each revoked its session)"
)


# A client may send any method name: the label takes these, the rest are "other" (a series per
# made-up name would grow without end).
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def route_label() -> str:
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def start_timer() -> None:
    g.metrics_started = time.perf_counter()
    g.metrics_in_flight = True
    IN_FLIGHT.inc()


def count_response(response: Response) -> Response:
    started = g.pop("metrics_started", None)
    if started is not None:
        method = request.method if request.method in METHODS else "other"
        count, observe = series_of(method, route_label(), response.status_code)
        count()
        observe(time.perf_counter() - started)
    return response


@functools.cache
def series_of(method: str, route: str, status: int) -> tuple[Callable[[], None], Callable[[float], None]]:
    """The request counter and latency histogram of one method, route rule and status, looked up
    once: labels() takes a lock and builds a key on every call. Routes are rules, not paths, so
    the combinations are few."""
    return REQUESTS.labels(method, route, str(status)).inc, LATENCY.labels(method, route).observe


def end_request(_error: BaseException | None) -> None:
    # Teardown runs for every request, also one that never reached start_timer.
    if g.pop("metrics_in_flight", False):
        IN_FLIGHT.dec()


def watch_pool(engine: Engine) -> None:
    @event.listens_for(engine, "checkout")
    def checked_out(*_args: object) -> None:
        DB_IN_USE.inc()
        overflow = getattr(engine.pool, "overflow", None)
        if overflow is not None:
            DB_OVERFLOW.set(max(0, overflow()))

    @event.listens_for(engine, "checkin")
    def checked_in(*_args: object) -> None:
        DB_IN_USE.dec()


def init_app(app: Flask) -> None:
    """Count every request the app answers (the error handlers' answers too): registered before
    any other before_request function, so a request they refuse is counted as well."""
    app.before_request(start_timer)
    app.after_request(count_response)
    app.teardown_request(end_request)
