"""Faults on the running stack: Redis stopped and started, Postgres restarted, web down (502)."""

import uuid

from contract import assert_error, assert_security_headers, json_of
from polling import until


def started_at(stack, service):
    container = stack.container(service)
    container.reload()
    return container.attrs["State"]["StartedAt"]


def test_redis_stopped_means_503_and_it_recovers_without_restarting_web(stack):
    api = stack.api()
    tokens = api.tokens(f"redis-{uuid.uuid4().hex[:8]}@example.com")
    web_started = started_at(stack, "web")
    stack.compose_run("stop", "redis")
    try:
        response = api.me(tokens["access_token"])
        assert_error(response, 503, "service_unavailable")
        assert_security_headers(response)
        ready = stack.get("/api/readyz")
        assert_error(ready, 503, "service_unavailable")
        assert json_of(ready)["error"]["details"]["redis"]["status"] == "error"
    finally:
        stack.compose_run("start", "redis")
    assert until(lambda: api.me(tokens["access_token"]).status_code == 200), "no recovery after Redis returned"
    assert started_at(stack, "web") == web_started, "web was restarted"


def test_postgres_restart_then_recovery(stack):
    api = stack.api()
    email = f"pg-{uuid.uuid4().hex[:8]}@example.com"
    tokens = api.tokens(email)
    stack.compose_run("restart", "db")
    assert until(lambda: api.me(tokens["access_token"]).status_code == 200, timeout=90)
    assert api.login(email).status_code == 200


def test_hook_not_running_is_a_json_502_with_headers(stack):
    response = stack.api().post("/hooks/github", json={"zen": "hello"})
    assert_error(response, 502, "service_unavailable")
    assert_security_headers(response)
    assert response.headers["Retry-After"] == "5"


def test_web_down_is_json_with_headers_then_back(stack):
    stack.compose_run("stop", "web")
    try:
        # Refused (502) or, once the stopped container's address is gone, unanswered (504).
        response = stack.get("/api/healthz")
        assert response.status_code in {502, 504}, response.status_code
        assert_error(response, response.status_code, "service_unavailable")
        assert_security_headers(response)
        assert response.headers["Retry-After"] == "5"
    finally:
        stack.compose_run("start", "web")
    stack.wait_healthy("web")
    assert until(lambda: stack.get("/api/healthz").status_code == 200), "nginx did not reach web again"
