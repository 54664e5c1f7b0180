"""Fail closed and recover: Redis stopped, the database (Postgres, MariaDB) restarted, with the same app
object throughout."""

import time

import pytest
import sqlalchemy

from api import create_app
from api.extensions import db
from contract import Api, assert_error
from harness.polling import until
from servers import postgres_url


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


@pytest.mark.parametrize("database_server", ["postgres", "mariadb"])
def test_database_restart_then_recovery(api, request, database_server):
    tokens = api.tokens()
    container = request.getfixturevalue(database_server).get_wrapped_container()
    container.stop(timeout=20)
    try:
        assert_error(api.me(tokens["access_token"]), 503, "service_unavailable")
        details = assert_error(api.get("/api/readyz"), 503, "service_unavailable")["details"]
        assert details["database"]["status"] == "error"
        assert api.get("/api/healthz").status_code == 200
    finally:
        container.start()
    assert until(lambda: api.me(tokens["access_token"]).status_code == 200), f"no recovery after {database_server}"
    # Nothing stored was lost.
    assert api.login().status_code == 200


def test_a_connection_dropped_after_the_views_last_query_is_no_500_and_costs_no_pool_slot(app, settings, postgres):
    """Postgres goes away between the view's last query and the end of the request: the answer
    stands, and the pool (one connection, no overflow) still serves the next request."""
    app = create_app({**settings, "DB_POOL_SIZE": "1", "DB_MAX_OVERFLOW": "0", "DB_POOL_TIMEOUT": "2"})
    admin = sqlalchemy.create_engine(postgres_url(postgres, "app"), poolclass=sqlalchemy.pool.NullPool)

    @app.get("/api/test-connection-dropped")
    def connection_dropped():
        pid = db.session.execute(sqlalchemy.text("SELECT pg_backend_pid()")).scalar_one()
        with admin.begin() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        return {"served_by": pid}

    client = app.test_client()
    try:
        for _ in range(5):
            response = client.get("/api/test-connection-dropped")
            assert response.status_code == 200, response.get_data(as_text=True)
        assert client.get("/api/readyz").status_code == 200
        assert Api(client).register("after-the-drops@example.com").status_code == 201
    finally:
        admin.dispose()
        with app.app_context():
            db.engine.dispose()
