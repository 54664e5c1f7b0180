"""What a production database really does to a request, on real Postgres and MariaDB: it turns
read-only, holds a lock, runs a statement too long, rolls a transaction back for a conflict; and
input no database takes. Each is a JSON answer with the right status (a 503 with Retry-After, a
retried request, a 422 naming the field), never a 500, and nothing personal reaches the log.

The faults are the servers' own: a database set read-only, a table locked from another
connection, triggers that sleep or raise the SQLSTATE a real conflict raises (a sequence counts
their turns, since a rolled-back transaction forgets everything else)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from urllib.parse import urlsplit

import pytest
import sqlalchemy
from flask_migrate import downgrade

from api import create_app
from api.cli import deploy_command
from api.extensions import db
from contract import PASSWORD, Api, assert_error, bearer
from docker_env import cut_off
from figures import record
from harness.polling import until
from servers import mariadb_url, postgres_url

BOTH = pytest.mark.parametrize("database_server", ["postgres", "mariadb"])
# An address as long as the users table takes (254), whose profile is far longer than 200 characters.
LONG_ADDRESS = "a" * 64 + "@" + ".".join(["b" * 60, "b" * 60, "b" * 59]) + ".example"
# "ß" case-folds to "ss": 130 characters typed, 255 once normalised.
LENGTHENS_WHEN_NORMALISED = "ß" * 125 + "@x.io"


def started(settings: dict[str, str], **overrides: str) -> Api:
    """An app on the test's database with ``overrides``, deployed (`flask deploy`)."""
    app = create_app({**settings, **overrides})
    result = app.test_cli_runner().invoke(deploy_command)
    assert result.exit_code == 0, result.output
    return Api(app.test_client())


def server_admin(request, database_server: str) -> sqlalchemy.Engine:
    """A superuser's engine on the test's server (not the test's database)."""
    server = request.getfixturevalue(database_server)
    url = mariadb_url(server, "") if database_server == "mariadb" else postgres_url(server, "app")
    return sqlalchemy.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)


def fresh_connections(api: Api) -> None:
    """Drop the app's pooled connections: the next request connects anew (and meets new settings)."""
    with api.http.application.app_context():
        db.engine.dispose()


def register_once(api: Api, email: str):
    """A sign-up sent once (Api.register waits out a 503's Retry-After, as a polite client does)."""
    return api.post("/api/auth/register", json={"email": email, "password": PASSWORD})


def assert_database_unavailable(response) -> dict:
    error = assert_error(response, 503, "service_unavailable")
    assert error["details"] == {"dependency": "database"}, error
    assert int(response.headers["Retry-After"]) >= 1
    return error


@BOTH
def test_text_no_database_takes_is_a_422_naming_the_field(api):
    surrogate = "correct horse \ud800 staple"
    cases = [
        ("/api/auth/register", {"email": "lone@example.com", "password": surrogate}, "password"),
        ("/api/auth/login", {"email": "lone@example.com", "password": surrogate}, "password"),
        ("/api/auth/register", {"email": "lone\udfff@example.com", "password": PASSWORD}, "email"),
        ("/api/auth/register", {"email": LENGTHENS_WHEN_NORMALISED, "password": PASSWORD}, "email"),
        ("/api/auth/password-reset", {"email": LENGTHENS_WHEN_NORMALISED}, "email"),
    ]
    for path, body, field in cases:
        error = assert_error(api.post(path, json=body), 422, "validation_error")
        assert field in error["details"], (path, error)
    tokens = api.tokens("changer@example.com")
    changed = api.post(
        "/api/auth/password",
        json={"current_password": PASSWORD, "new_password": surrogate},
        headers=bearer(tokens["access_token"]),
    )
    assert "new_password" in assert_error(changed, 422, "validation_error")["details"]


@BOTH
def test_the_database_token_store_holds_the_profile_of_the_longest_address(settings):
    assert len(LONG_ADDRESS) == 254
    api = started(settings, BLACKLIST_STORAGE_TYPE="database")
    tokens = api.tokens(LONG_ADDRESS)
    for _ in range(2):  # the first from the users table, then from the store's copy
        me = api.me(tokens["access_token"])
        assert me.status_code == 200, me.get_data(as_text=True)
        assert me.json["email"] == LONG_ADDRESS
    assert api.logout(tokens["access_token"]).status_code == 204


@contextmanager
def read_only(request, database_server: str, database: str) -> Iterator[None]:
    """The database takes no writes: what a failover to a replica or a full disk's protection
    looks like. Postgres: this database's new sessions; MariaDB: the whole server, for users
    without the right to write anyway (the app's here, not root)."""
    admin = server_admin(request, database_server)
    on, off = (
        ("SET GLOBAL read_only = 1", "SET GLOBAL read_only = 0")
        if database_server == "mariadb"
        else (
            f'ALTER DATABASE "{database}" SET default_transaction_read_only = on',
            f'ALTER DATABASE "{database}" RESET default_transaction_read_only',
        )
    )
    with admin.connect() as connection:
        connection.exec_driver_sql(on)
    try:
        yield
    finally:
        with admin.connect() as connection:
            connection.exec_driver_sql(off)
        admin.dispose()


@pytest.fixture
def app_user_settings(request, database_server, settings) -> Iterator[dict[str, str]]:
    """The test's settings with the app on a user of its own that owns only the test's database
    (root on MariaDB writes whatever read_only says; Postgres's test user is the app's already),
    and the app started (in the fixture: `flask deploy` runs alembic, whose logging setup drops
    the handlers pytest puts on the root logger, caplog's among them)."""
    if database_server != "mariadb":
        started(settings)
        yield settings
        return
    url = urlsplit(settings["DATABASE_URL"])
    database, user, password = url.path.lstrip("/"), f"app_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    admin = server_admin(request, database_server)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{password}'"))
        connection.execute(sqlalchemy.text(f"GRANT ALL ON `{database}`.* TO '{user}'@'%'"))
    app_settings = {
        **settings,
        "DATABASE_URL": f"mysql+pymysql://{user}:{password}@{url.hostname}:{url.port}/{database}",
    }
    started(app_settings)
    yield app_settings
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"DROP USER '{user}'@'%'"))
    admin.dispose()


@BOTH
def test_a_read_only_database_is_a_503_not_ready_and_logs_no_personal_data(
    request, database_server, app_user_settings, caplog
):
    caplog.set_level(logging.WARNING)
    api = Api(create_app(app_user_settings).test_client())
    tokens = api.tokens("before@example.com")
    database = urlsplit(app_user_settings["DATABASE_URL"]).path.lstrip("/")
    email = f"while-read-only-{uuid.uuid4().hex[:6]}@example.com"
    with read_only(request, database_server, database):
        fresh_connections(api)
        assert_database_unavailable(register_once(api, email))
        assert api.me(tokens["access_token"]).status_code == 200  # reading still works
        ready = assert_error(api.get("/api/readyz"), 503, "service_unavailable")
        assert ready["details"]["database"]["status"] == "error"
        assert api.get("/api/healthz").status_code == 200
    logged = caplog.text
    assert "read-only" in logged or "read_only" in logged or "READ-ONLY" in logged, logged[-2000:]
    assert email not in logged and "$argon2" not in logged, logged[-2000:]
    fresh_connections(api)
    assert api.register(email).status_code == 201
    assert api.get("/api/readyz").status_code == 200


@BOTH
def test_a_database_cut_off_the_network_is_given_up_on_within_its_dead_peer_bound(request, database_server, settings):
    """A partition: the server's packets dropped, nothing refused, reached at its own address (a
    published port's proxy would answer for it). A request on a pooled connection fails within
    DB_DEAD_PEER_SECONDS and a connect's timeout (keepalives and TCP_USER_TIMEOUT: libpq's on
    Postgres, set on PyMySQL's socket on MariaDB), not after its statement's bound of 20 s; once
    the server is back, requests succeed again by themselves."""
    container = request.getfixturevalue(database_server).get_wrapped_container()
    container.reload()
    published = urlsplit(settings["DATABASE_URL"]).netloc.rsplit("@", 1)[1]
    own_address = f"{container.attrs['NetworkSettings']['IPAddress']}:{3306 if database_server == 'mariadb' else 5432}"
    direct = settings["DATABASE_URL"].replace(f"@{published}/", f"@{own_address}/")
    api = started({**settings, "DATABASE_URL": direct}, DB_STATEMENT_TIMEOUT="20", DB_DEAD_PEER_SECONDS="2")
    email = f"cut-off-{uuid.uuid4().hex[:6]}@example.com"
    api.tokens(email)
    with cut_off(container):
        began = time.monotonic()
        assert_database_unavailable(api.login(email))
        given_up_after = time.monotonic() - began
    assert given_up_after < 6, f"a dead peer is given up on within 2 s (and a connect's 2 s): {given_up_after:.1f}s"
    back = time.monotonic()
    assert until(lambda: api.login(email).status_code == 200, timeout=15, interval=0.1)
    record(
        "database-stalls",
        f"{database_server} cut off the network (integration tier, a pooled connection)",
        {"given_up_after_s": round(given_up_after, 2), "first_200_after_s": round(time.monotonic() - back, 2)},
    )


@contextmanager
def table_locked(
    request, database_server: str, database: str, table: str, release_after: float | None = None
) -> Iterator[None]:
    """Another session holds ``table`` as a migration does: no one else may read or write it; until
    the block ends, or for ``release_after`` seconds from the block's start."""
    server = request.getfixturevalue(database_server)
    if database_server == "mariadb":
        url, lock = mariadb_url(server, database), f"LOCK TABLES {table} WRITE"
    else:
        url, lock = postgres_url(server, database), f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE"
    holder = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool)
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.connect() as connection:
            connection.exec_driver_sql(lock)
            held.set()
            release.wait(release_after)
            connection.rollback()
            if database_server == "mariadb":
                connection.exec_driver_sql("UNLOCK TABLES")

    session = threading.Thread(target=hold)
    session.start()
    assert held.wait(30), f"{table} could not be locked"
    try:
        yield
    finally:
        release.set()
        session.join()
        holder.dispose()


@BOTH
def test_a_table_held_by_another_session_costs_a_request_its_lock_bound_and_a_503(request, database_server, settings):
    api = started(settings, DB_LOCK_TIMEOUT="1")
    tokens = api.tokens("reader@example.com")
    database = urlsplit(settings["DATABASE_URL"]).path.lstrip("/")
    with table_locked(request, database_server, database, "users"):
        began = time.monotonic()
        assert_database_unavailable(api.login("reader@example.com"))
        waited = time.monotonic() - began
        assert assert_error(api.get("/api/readyz"), 503, "service_unavailable")["details"]["database"]["status"] == (
            "error"
        )
    assert 0.9 < waited < 3, f"the lock bound is 1 s; the request took {waited:.1f}s"
    assert api.me(tokens["access_token"]).status_code == 200
    assert api.login("reader@example.com").status_code == 200
    assert api.get("/api/readyz").status_code == 200


def test_a_statement_over_its_bound_is_a_503(request, settings):
    """Postgres: an INSERT whose trigger runs 3 s, with requests bounded to 1 s. (`flask deploy`
    keeps its own bounds: test_a_migration_waits_its_own_lock_bound_not_a_request_s.)"""
    api = started(settings, DB_STATEMENT_TIMEOUT="1")
    with api.http.application.app_context(), db.engine.begin() as connection:
        connection.exec_driver_sql(
            "CREATE FUNCTION slow_insert() RETURNS trigger LANGUAGE plpgsql AS "
            "$$ BEGIN PERFORM pg_sleep(3); RETURN NEW; END $$"
        )
        connection.exec_driver_sql(
            "CREATE TRIGGER slow BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION slow_insert()"
        )
    began = time.monotonic()
    assert_database_unavailable(register_once(api, "slow@example.com"))
    assert time.monotonic() - began < 2.5
    with api.http.application.app_context(), db.engine.connect() as connection:
        bound = connection.exec_driver_sql("SHOW statement_timeout").scalar()
    assert bound == "1s"


def test_a_migration_waits_its_own_lock_bound_not_a_request_s(request, settings):
    """`flask deploy` runs migrations with DB_MIGRATION_LOCK_TIMEOUT (migrations/env.py), not the
    request's DB_LOCK_TIMEOUT: the last migration, run again while another session holds its table
    for 2.5 s, waits and succeeds under a bound of 6 s where a request's 1 s would fail it; held
    past the bound, the deploy fails."""
    api = started(settings, DB_LOCK_TIMEOUT="1", DB_MIGRATION_LOCK_TIMEOUT="6")
    app = api.http.application
    database = urlsplit(settings["DATABASE_URL"]).path.lstrip("/")

    with app.app_context():
        downgrade(revision="-1")  # the last migration alters auth_state
        db.engine.dispose()
    runner = app.test_cli_runner()
    with table_locked(request, "postgres", database, "auth_state", release_after=2.5):
        began = time.monotonic()
        result = runner.invoke(deploy_command)
        waited = time.monotonic() - began
    assert result.exit_code == 0, result.output
    assert 2 < waited < 6, f"the migration waited {waited:.1f}s for a lock held 2.5 s"
    with app.app_context():
        downgrade(revision="-1")
        db.engine.dispose()
    with table_locked(request, "postgres", database, "auth_state", release_after=8):
        began = time.monotonic()
        result = runner.invoke(deploy_command)
        waited = time.monotonic() - began
    assert result.exit_code != 0, result.output
    assert "lock timeout" in str(result.exception), repr(result.exception)
    assert 5.5 < waited < 8, f"the migration's lock bound is 6 s; it gave up after {waited:.1f}s"


@contextmanager
def inserts_into_users_fail(
    api: Api, database_server: str, times: int, postgres_sqlstate: str, mysql_error: int, message: str
) -> Iterator[None]:
    """The next ``times`` INSERTs into users fail as the server itself would fail them: Postgres
    with ``postgres_sqlstate``, MariaDB with ``mysql_error`` (a sequence counts the turns, since a
    rolled-back transaction forgets everything else)."""
    with api.http.application.app_context(), db.engine.begin() as connection:
        connection.exec_driver_sql("CREATE SEQUENCE failing_turns")
        if database_server == "mariadb":
            connection.exec_driver_sql(
                "CREATE TRIGGER failing_turn BEFORE INSERT ON users FOR EACH ROW "
                f"IF NEXTVAL(failing_turns) <= {times} THEN "
                f"SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = {mysql_error}, MESSAGE_TEXT = '{message}'; END IF"
            )
        else:
            connection.exec_driver_sql(
                "CREATE OR REPLACE FUNCTION failing_turn() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
                f"IF nextval('failing_turns') <= {times} THEN "
                f"RAISE EXCEPTION '{message}' USING ERRCODE = '{postgres_sqlstate}'; END IF; "
                "RETURN NEW; END $$"
            )
            connection.exec_driver_sql(
                "CREATE TRIGGER failing_turn BEFORE INSERT ON users FOR EACH ROW EXECUTE FUNCTION failing_turn()"
            )
    try:
        yield
    finally:
        with api.http.application.app_context(), db.engine.begin() as connection:
            connection.exec_driver_sql(
                "DROP TRIGGER failing_turn" + ("" if database_server == "mariadb" else " ON users")
            )
            connection.exec_driver_sql("DROP SEQUENCE failing_turns")


def conflicts(api: Api, database_server: str, times: int) -> AbstractContextManager[None]:
    """The next ``times`` INSERTs into users fail as a serialization failure (Postgres's SQLSTATE
    40001) or a deadlock (MariaDB's error 1213) would."""
    return inserts_into_users_fail(api, database_server, times, "40001", 1213, "could not serialize access")


@BOTH
def test_a_full_disk_is_a_503_and_readiness_fails_until_a_write_succeeds(api, database_server):
    """A full disk refuses writes while reads still answer (Postgres's SQLSTATE 53100, MariaDB's
    error 1021): readiness, which writes nothing, learns of it from the request that met it."""
    with inserts_into_users_fail(api, database_server, 1_000_000, "53100", 1021, "could not extend file: disk full"):
        assert_database_unavailable(register_once(api, "while-full@example.com"))
        ready = assert_error(api.get("/api/readyz"), 503, "service_unavailable")
        assert ready["details"]["database"]["status"] == "error"
        assert api.get("/api/healthz").status_code == 200
    assert api.register("after-full@example.com").status_code == 201
    assert api.get("/api/readyz").status_code == 200


@BOTH
def test_a_conflict_runs_the_request_once_more_and_a_second_one_is_a_503(api, database_server):
    with conflicts(api, database_server, times=1):
        assert register_once(api, "second-time-lucky@example.com").status_code == 201
    assert api.login("second-time-lucky@example.com").status_code == 200
    with conflicts(api, database_server, times=2):
        assert_database_unavailable(register_once(api, "unlucky@example.com"))
    assert_error(api.login("unlucky@example.com"), 401, "invalid_credentials")  # nothing half-written
    assert api.register("unlucky@example.com").status_code == 201
