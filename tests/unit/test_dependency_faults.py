"""A token store or database that is down: 503 at once (circuit breakers), back by itself, and the
readiness probe says which without telling what went wrong."""

from __future__ import annotations

import logging
import shutil

from api.breaker import BreakerState
from contract import Api, assert_error
from harness.polling import until


def unreachable(app_factory, tmp_path, **overrides):
    """An app whose database (and so its database token store) is a file in a folder not there yet."""
    path = tmp_path / "later" / "app.sqlite"
    app = app_factory(DATABASE_URL=f"sqlite:///{path}", BLACKLIST_STORAGE_TYPE="database", **overrides)
    return app, path


def test_a_store_that_keeps_failing_is_not_tried_until_its_reset_time(app_factory, tmp_path):
    token = Api(app_factory(BLACKLIST_STORAGE_TYPE="database").test_client()).tokens()["access_token"]
    app, _ = unreachable(app_factory, tmp_path, BREAKER_FAILURES=3, BREAKER_RESET_SECONDS=60)
    api = Api(app.test_client())
    for _ in range(3):
        assert_error(api.me(token), 503, "service_unavailable")
    breakers = app.extensions["breakers"]
    assert breakers["token store"].state is BreakerState.OPEN
    response = api.me(token)
    error = assert_error(response, 503, "service_unavailable")
    assert "token store" in error["message"]
    assert response.headers["Retry-After"] == "1"
    assert breakers["token store"].state is BreakerState.OPEN


def test_the_app_recovers_by_itself_once_the_store_is_back(app_factory, tmp_path, database_path):
    token = Api(app_factory(BLACKLIST_STORAGE_TYPE="database").test_client()).tokens()["access_token"]
    app, path = unreachable(app_factory, tmp_path, BREAKER_FAILURES=1, BREAKER_RESET_SECONDS=0.05)
    api = Api(app.test_client())
    assert_error(api.me(token), 503, "service_unavailable")
    assert app.extensions["breakers"]["token store"].state is not BreakerState.CLOSED
    path.parent.mkdir()
    shutil.copy(database_path, path)  # the database comes back, with the data it had
    # Requests until the breakers' next probe lets one through (a count of requests would race the
    # clock: how many fit in the probe interval depends on how fast a request is).
    answers: list[int] = []
    assert until(lambda: answers.append(api.me(token).status_code) or answers[-1] == 200, timeout=10, interval=0.01)
    assert set(answers[:-1]) <= {503}, answers
    assert api.me(token).status_code == 200
    assert app.extensions["breakers"]["token store"].state is BreakerState.CLOSED


def test_readiness_names_the_failing_dependency_but_not_what_went_wrong(app_factory, tmp_path, caplog):
    app, _ = unreachable(app_factory, tmp_path)
    with caplog.at_level(logging.WARNING, logger="api"):
        response = app.test_client().get("/api/readyz")
    error = assert_error(response, 503, "service_unavailable")
    assert error["details"]["database"]["status"] == "error"
    assert set(error["details"]["database"]) == {"status", "latency_ms"}
    assert "sqlite" not in response.get_data(as_text=True).lower()
    assert response.headers["Retry-After"] == "1"
    assert any("readiness: database failed" in record.getMessage() for record in caplog.records)


def test_the_database_breaker_opens_after_repeated_failures_and_readiness_stays_503(app_factory, tmp_path):
    app, _ = unreachable(app_factory, tmp_path, BREAKER_FAILURES=2, BREAKER_RESET_SECONDS=60)
    client = app.test_client()
    for _ in range(2):
        assert client.get("/api/readyz").status_code == 503
    assert app.extensions["breakers"]["database"].state is BreakerState.OPEN
    assert client.get("/api/readyz").status_code == 503


def test_an_outage_is_logged_once_when_the_breaker_opens_not_once_per_request(app_factory, tmp_path, caplog):
    token = Api(app_factory(BLACKLIST_STORAGE_TYPE="database").test_client()).tokens()["access_token"]
    app, _ = unreachable(app_factory, tmp_path, BREAKER_FAILURES=3, BREAKER_RESET_SECONDS=60)
    api = Api(app.test_client())
    with caplog.at_level(logging.INFO, logger="api"):
        for _ in range(20):
            assert_error(api.me(token), 503, "service_unavailable")
    messages = [record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING]
    assert sum("token store: circuit open after 3 failures" in message for message in messages) == 1
    assert sum("token store unavailable" in message for message in messages) == 3, messages
