"""Fail closed and recover: Redis stopped, Postgres restarted, with the same app object throughout."""

import time

from contract import assert_error
from polling import until


def test_redis_down_means_503_then_recovery_without_restart(api, redis_server):
    tokens = api.tokens()
    container = redis_server.get_wrapped_container()
    container.stop(timeout=10)
    try:
        started = time.monotonic()
        response = api.me(tokens["access_token"])
        elapsed = time.monotonic() - started
        error = assert_error(response, 503, "service_unavailable")
        assert "token store" in error["message"]
        assert elapsed < 5, f"a dead store must answer at once, took {elapsed:.1f}s"
        assert_error(api.refresh(tokens["refresh_token"]), 503, "service_unavailable")
        assert_error(api.login(), 503, "service_unavailable")
        ready = api.get("/api/readyz")
        details = assert_error(ready, 503, "service_unavailable")["details"]
        assert details["redis"]["status"] == "error"
        assert details["database"]["status"] == "ok"
        assert api.get("/api/healthz").status_code == 200  # liveness is not readiness
    finally:
        container.start()
    recovered = until(lambda: api.me(tokens["access_token"]).status_code == 200)
    assert recovered, "the app did not recover by itself once Redis was back"
    assert api.get("/api/readyz").status_code == 200


def test_revoked_token_is_never_accepted_while_redis_is_down(api, redis_server):
    tokens = api.tokens()
    api.logout(tokens["access_token"])
    container = redis_server.get_wrapped_container()
    container.stop(timeout=10)
    try:
        for _ in range(5):
            assert api.me(tokens["access_token"]).status_code == 503
    finally:
        container.start()
    until(lambda: api.me(tokens["access_token"]).status_code != 503)
    assert_error(api.me(tokens["access_token"]), 401, "token_revoked")


def test_postgres_restart_then_recovery(api, postgres):
    tokens = api.tokens()
    container = postgres.get_wrapped_container()
    container.stop(timeout=20)
    try:
        assert_error(api.me(tokens["access_token"]), 503, "service_unavailable")
        assert_error(api.get("/api/readyz"), 503, "service_unavailable")
    finally:
        container.start()
    assert until(lambda: api.me(tokens["access_token"]).status_code == 200), "no recovery after Postgres came back"
    # Nothing stored was lost.
    assert api.login().status_code == 200
