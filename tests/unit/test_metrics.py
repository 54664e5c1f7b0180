"""The API's Prometheus metrics in one process (the integration tier sums them over gunicorn's
workers): counts and latencies move when requests are made, labelled by route rule and status;
sign-ins by outcome; refresh-token reuse; the token store's round trips and failures; a circuit
breaker's state; the database pool."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from api.breaker import CircuitBreaker
from api.token_store import StoreUnavailable
from contract import PASSWORD, assert_error
from fake_clock import FakeClock


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Counted:
    """The change of one sample across a block."""

    def __init__(self, name: str, **labels: str):
        self.name, self.labels = name, labels

    def __enter__(self) -> Counted:
        self.before = value(self.name, **self.labels)
        return self

    def __exit__(self, *_exc: object) -> None:
        self.delta = value(self.name, **self.labels) - self.before


def test_requests_are_counted_and_timed_by_route_rule_and_status(client):
    requests = "flask_stack_http_requests_total"
    with (
        Counted(requests, method="GET", route="/api/healthz", status="200") as healthz,
        Counted("flask_stack_http_request_duration_seconds_count", method="GET", route="/api/healthz") as timed,
        Counted(requests, method="GET", route="unmatched", status="404") as unmatched,
        Counted(requests, method="PATCH", route="/api/users/<int(max=2147483647):user_id>", status="401") as patched,
        Counted(requests, method="POST", route="/api/auth/login", status="415") as refused,
    ):
        for _ in range(3):
            assert client.get("/api/healthz").status_code == 200
        # Made-up paths share one series, whatever they are.
        assert client.get("/api/nothing-here").status_code == 404
        assert client.get("/api/nothing-here-either").status_code == 404
        assert client.patch("/api/users/7", json={}).status_code == 401
        # Refused before any view (not JSON): counted all the same.
        assert client.post("/api/auth/login", data="x", content_type="text/plain").status_code == 415
    assert (healthz.delta, timed.delta, unmatched.delta, patched.delta, refused.delta) == (3, 3, 2, 1, 1)
    assert value("flask_stack_http_requests_in_flight") == 0


def test_sign_ins_are_counted_by_outcome_and_refresh_reuse_is_counted(api):
    api.register("counted@example.com")
    with (
        Counted("flask_stack_logins_total", outcome="ok") as ok,
        Counted("flask_stack_logins_total", outcome="failed") as failed,
        Counted("flask_stack_logins_total", outcome="throttled") as throttled,
        Counted("flask_stack_refresh_reuse_total") as reuse,
    ):
        tokens = api.tokens("counted@example.com")
        assert api.refresh(tokens["refresh_token"]).status_code == 200
        assert_error(api.refresh(tokens["refresh_token"]), 401, "token_revoked")
        answers = [api.login("counted@example.com", "wrong " + PASSWORD).status_code for _ in range(12)]
    assert answers[-1] == 429
    assert ok.delta == 1 and reuse.delta == 1
    assert failed.delta == answers.count(401) and throttled.delta == answers.count(429) > 0


def test_token_store_round_trips_are_timed(api, app):
    tokens = api.tokens("store@example.com")
    with Counted("flask_stack_token_store_seconds_count", operation="get_many") as reads:
        assert api.me(tokens["access_token"]).status_code == 200
    assert reads.delta == 1  # one round trip per request: revocation and the cached profile together


def test_a_failing_token_store_is_counted_and_its_breaker_shows_open(app_factory, monkeypatch):
    app = app_factory(BLACKLIST_STORAGE_TYPE="memory", BREAKER_FAILURES="2")
    store = app.extensions["token_store"]

    def down(*_args):
        raise StoreUnavailable("down")

    monkeypatch.setattr(store.inner, "get_many", down)
    with Counted("flask_stack_token_store_errors_total", operation="get_many") as errors, app.app_context():
        for _ in range(3):
            with pytest.raises(StoreUnavailable):  # twice the store's own, then the breaker's refusal
                store.get_many(["k"])
    assert errors.delta == 3
    assert value("flask_stack_circuit_open", breaker="token store") == 1


def test_a_breaker_state_is_a_gauge():
    clock = FakeClock()
    breaker = CircuitBreaker("metrics test", failure_threshold=1, reset_seconds=1, clock=clock)
    assert value("flask_stack_circuit_open", breaker="metrics test") == 0

    def fails():
        raise RuntimeError("down")

    with pytest.raises(RuntimeError):
        breaker.call(fails)
    assert value("flask_stack_circuit_open", breaker="metrics test") == 1
    clock.elapse(1.5)
    assert breaker.call(lambda: "up") == "up"
    assert value("flask_stack_circuit_open", breaker="metrics test") == 0


def test_database_connections_in_use_return_to_the_pool(api):
    before = value("flask_stack_db_connections_in_use")
    api.register("pool@example.com")
    assert value("flask_stack_db_connections_in_use") == before


@pytest.mark.parametrize(("status", "ready"), [(200, 1), (503, 0), (None, 0)])
def test_readiness_is_what_readyz_answers(status, ready):
    """The master's readiness gauge: 1 only for a 200; a 503 or nothing listening is 0."""
    from prometheus_client import CollectorRegistry

    from http_inbox import HttpInbox
    from serving.metrics import ReadinessCollector

    readyz = HttpInbox(status=status or 200)
    if status is None:
        readyz.close()  # nothing listens there now: refused
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ReadinessCollector(f"{readyz.url}/api/readyz", timeout=2))
    try:
        assert registry.get_sample_value("flask_stack_ready") == ready
    finally:
        if status is not None:
            readyz.close()


def test_a_made_up_method_is_counted_as_other(client):
    """A series per method name a client invents would grow without end."""
    with Counted("flask_stack_http_requests_total", method="other", route="unmatched", status="405") as other:
        response = client.open("/api/healthz", method="BREW")
    assert response.status_code == 405
    assert other.delta == 1
    assert value("flask_stack_http_requests_total", method="BREW", route="unmatched", status="405") == 0
