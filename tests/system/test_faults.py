"""Faults on the running stack: Redis stopped and started, Postgres restarted, web down (502)."""

import time
import uuid

from contract import assert_error, assert_security_headers, bearer, json_of
from figures import record
from harness.polling import until
from traffic import Traffic, percentile

REPORT = "faults"  # test-artifacts/faults.json


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
    assert api.patiently(lambda: api.login(email)).status_code == 200


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


def test_postgres_crash_under_load_is_json_503_at_worst_and_loses_nothing(stack):
    """Postgres dies (an immediate shutdown: no checkpoint, as in a crash) while admins list users
    and users read their profile; Docker's restart policy brings it back on its volume."""
    api = stack.api()
    accounts = [f"before-crash-{n}-{uuid.uuid4().hex[:6]}@example.com" for n in range(8)]
    for email in accounts:
        assert api.register(email).status_code == 201
    admin = api.tokens(stack.create_admin())["access_token"]
    db = stack.container("db")
    restarts = db.attrs["RestartCount"]
    with Traffic(
        [stack.https + "/api/users?per_page=50", stack.https + "/api/users/me"],
        str(stack.ca_file),
        threads=8,
        headers=bearer(admin),
        keep_alive=True,
    ) as traffic:
        time.sleep(2)
        crashed = time.time()
        stack.compose_run("exec", "-T", "-u", "postgres", "db", "sh", "-c", "kill -QUIT 1")
        assert until(lambda: db.reload() or db.attrs["RestartCount"] > restarts, timeout=60), "not restarted"
        stack.wait_healthy("db")
        back = time.time()
        assert until(lambda: any(o.ok and o.at > back for o in traffic.outcomes), timeout=60), "no recovery"
        time.sleep(2)
    unexpected = [o for o in traffic.outcomes if not (o.ok or (o.status, o.detail) == (503, "service_unavailable"))]
    unavailable = [o for o in traffic.outcomes if o.status == 503]
    record(
        REPORT,
        "postgres crash and restart under load",
        {
            "sent": traffic.sent,
            "json_503": len(unavailable),
            "other": len(unexpected),
            "restart_seconds": round(back - crashed, 1),
            "p99_503_ms": round(percentile([o.seconds for o in unavailable], 0.99) * 1000, 1),
        },
    )
    assert unexpected == [], unexpected[:5]  # no 500, no HTML, no connection reset
    assert unavailable, "the crash was not felt: the test did not test anything"
    assert all(o.retry_after for o in unavailable)
    for email in accounts:  # every account committed before the crash is still there
        assert api.patiently(lambda account=email: api.login(account)).status_code == 200, email


def test_redis_killed_under_load_fails_closed_at_once_and_recovers_by_itself(stack):
    """Redis is killed (its container gone, so its name no longer resolves) for five seconds while
    users read their profile: every answer meanwhile is a JSON 503, none lets a token through, and
    they come fast (a circuit breaker, not a connect timeout each)."""
    api = stack.api()
    tokens = api.tokens(f"redis-kill-{uuid.uuid4().hex[:8]}@example.com")
    with Traffic(
        [stack.https + "/api/users/me"],
        str(stack.ca_file),
        threads=8,
        headers=bearer(tokens["access_token"]),
        keep_alive=True,
    ) as traffic:
        time.sleep(2)
        stack.compose_run("kill", "redis")
        down = time.time()
        time.sleep(5)
        restarting = time.time()
        stack.compose_run("start", "redis")
        back = time.time()
        assert until(lambda: any(o.ok and o.at > back for o in traffic.outcomes), timeout=60), "no recovery"
        time.sleep(1)
    during = traffic.between(down, restarting)
    answered = [o.at + o.seconds for o in traffic.outcomes if o.ok and o.at + o.seconds > back]
    figures = {
        "sent_during_outage": len(during),
        "json_503_during_outage": sum((o.status, o.detail) == (503, "service_unavailable") for o in during),
        "p50_503_ms": round(percentile([o.seconds for o in during], 0.5) * 1000, 1),
        "p99_503_ms": round(percentile([o.seconds for o in during], 0.99) * 1000, 1),
        "first_success_after_redis_started_ms": round((min(answered) - back) * 1000),
    }
    record(REPORT, "redis killed for 5 s under load", figures)
    assert during, "no request was sent while Redis was down"
    assert figures["json_503_during_outage"] == len(during), [o for o in during if o.status != 503][:5]
    assert all(o.retry_after for o in during)
