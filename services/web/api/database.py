"""The database connection's failure modes, so that a database fault is a quick JSON 503, never a
500 and never a request that hangs.

- Every statement and every wait for a lock is bounded (DB_STATEMENT_TIMEOUT, DB_LOCK_TIMEOUT),
  and a peer that stopped answering is given up on within DB_DEAD_PEER_SECONDS: Postgres takes
  these at connect time (api/config.py, ``server_connect_args``); MariaDB and MySQL get their
  session's bounds here as each connection opens, and keepalives on its socket as libpq's.
  `flask deploy` sets longer ones for itself.
- Connecting goes through a circuit breaker, and a connection that dies under a statement (or
  its ping) counts into it too: while the database is unreachable, requests fail at once instead
  of each waiting out its own timeout. A connection found dead invalidates the whole pool, so the
  next requests connect anew (through the breaker) rather than each finding its own dead one.
- One classification of the database's errors (``fault_of``), by SQLSTATE (Postgres) or error
  number (MariaDB/MySQL): unavailable (unreachable, read-only, full, out of connections, shutting
  down, a statement or lock wait over its bound) answers 503 with Retry-After; a transaction the
  database rolled back for a conflict (serialization failure, deadlock) is run once more
  (``once_more_on_conflict``), then answers 503; anything else (integrity errors included) is the
  view's to handle, or a 500.
- The request's session is closed in a teardown that survives a connection the server dropped
  after the view's last query (Flask-SQLAlchemy's own teardown would raise, and gunicorn would
  answer its own empty 500).
- Pooled connections are pinged on checkout (``pool_pre_ping``), so the first request after the
  database is back uses a fresh connection.
"""

from __future__ import annotations

import enum
import logging
import math
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from flask import Flask, current_app
from sqlalchemy import Connection, Dialect, Engine, event
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from . import metrics
from .breaker import CircuitBreaker, CircuitOpen
from .config import dead_peer_probes
from .extensions import db
from .models.columns import MYSQL_DIALECTS

T = TypeVar("T")

# What "the database is unavailable" looks like from SQLAlchemy, whatever the server said: refused
# or dropped connections, a pool with no connection free in time. ``fault_of`` knows the rest.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError, DisconnectionError)
# Postgres's SQLSTATEs (appendix A of its manual) for a database that cannot do the work now: a
# class (its first two characters) or one code.
POSTGRES_UNAVAILABLE_CLASSES = {"08", "53", "57"}  # connection; resources (disk, memory, connections); operator
POSTGRES_UNAVAILABLE_CODES = {"25006", "55P03"}  # read-only transaction; lock not available (lock_timeout)
POSTGRES_CONFLICT_CODES = {"40001", "40P01"}  # serialization failure, deadlock detected
# MariaDB/MySQL's error numbers for the same.
MYSQL_UNAVAILABLE_ERRORS = {
    1021,  # disk full
    1040,  # too many connections
    1053,  # server shutdown in progress
    1205,  # lock wait timeout
    1290,  # --read-only (or another option) prevents the statement
    1792,  # read-only transaction
    1836,  # running in read-only mode
    1969,  # MariaDB: max_statement_time exceeded
    3024,  # MySQL: max_execution_time exceeded
    2002,  # can't connect (socket)
    2003,  # can't connect (TCP)
    2006,  # server has gone away
    2013,  # lost connection during query
}
MYSQL_CONFLICT_ERRORS = {1213}  # deadlock found when trying to get lock
# Refusals for want of a resource (disk, memory, connections), which readiness's own probe, writing
# nothing on a connection it already has, would not meet: Postgres's class 53, MariaDB/MySQL's.
POSTGRES_RESOURCE_CLASS = "53"
MYSQL_RESOURCE_ERRORS = {1021, 1040}  # disk full, too many connections
# How long readiness fails after a request met one, unless a write commits first.
RESOURCE_FAULT_MEMORY_SECONDS = 10.0
# A wait with no bound, where MySQL's lock waits must have one: a year, its own default.
MYSQL_NO_LOCK_BOUND = 31_536_000

log = logging.getLogger(__name__)


class DatabaseFault(enum.Enum):
    UNAVAILABLE = "unavailable"  # 503 with Retry-After: it may work in a few seconds
    CONFLICT = "conflict"  # the database rolled the transaction back: run it once more


def server_codes(error: BaseException) -> tuple[str | None, int | None]:
    """What the server said of ``error`` (SQLAlchemy's, wrapping the driver's): Postgres's SQLSTATE,
    or MariaDB/MySQL's error number (PyMySQL's errors carry (number, message) as their arguments)."""
    driver_error = getattr(error, "orig", None)
    sqlstate = getattr(driver_error, "pgcode", None)
    arguments = getattr(driver_error, "args", ())
    number = arguments[0] if arguments and isinstance(arguments[0], int) else None
    return (sqlstate if isinstance(sqlstate, str) else None), number


def fault_of(error: BaseException) -> DatabaseFault | None:
    """What kind of database fault ``error`` is, or None when it is not one (a bug, a constraint)."""
    sqlstate, number = server_codes(error)
    if sqlstate is not None:
        if sqlstate in POSTGRES_CONFLICT_CODES:
            return DatabaseFault.CONFLICT
        if sqlstate[:2] in POSTGRES_UNAVAILABLE_CLASSES or sqlstate in POSTGRES_UNAVAILABLE_CODES:
            return DatabaseFault.UNAVAILABLE
    if number in MYSQL_CONFLICT_ERRORS:
        return DatabaseFault.CONFLICT
    if number in MYSQL_UNAVAILABLE_ERRORS:
        return DatabaseFault.UNAVAILABLE
    if isinstance(error, DATABASE_UNAVAILABLE) or (isinstance(error, DBAPIError) and error.connection_invalidated):
        return DatabaseFault.UNAVAILABLE
    return None


def is_database_fault(error: BaseException) -> bool:
    """Whether a client should be told to try again shortly (a conflict that persisted is one too)."""
    return fault_of(error) is not None


def once_more_on_conflict(run: Callable[[], T]) -> T:
    """Run a request's work; if the database rolled its transaction back for a conflict with
    another (a serialization failure, a deadlock), roll back and run it once more. A second
    conflict propagates (a 503, ``fault_of``)."""
    try:
        return run()
    except DBAPIError as error:
        if fault_of(error) is not DatabaseFault.CONFLICT:
            raise
        log.info("database conflict (%s), running the request once more", type(error.orig).__name__)
        db.session.rollback()
        return run()


class ResourceFaults:
    """The last refusal for want of a resource a request of this process met (a full disk refuses
    writes while reads still answer), until a write commits or it is RESOURCE_FAULT_MEMORY_SECONDS
    old: readiness fails meanwhile, naming it."""

    def __init__(self, engine: Engine, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.last: tuple[float, str] | None = None

        @event.listens_for(engine, "handle_error")
        def remember(context: ExceptionContext) -> None:
            error = context.sqlalchemy_exception
            if error is not None and is_resource_fault(error):
                self.last = (
                    self.clock(),
                    f"{type(context.original_exception).__name__}: {context.original_exception}",
                )

        @event.listens_for(engine, "commit")
        def forget(_connection: Connection) -> None:
            self.last = None

    def recent(self) -> str | None:
        if self.last is None:
            return None
        when, what = self.last
        age = self.clock() - when
        return None if age > RESOURCE_FAULT_MEMORY_SECONDS else f"{age:.0f} s ago a request met {what.splitlines()[0]}"


def is_resource_fault(error: BaseException) -> bool:
    sqlstate, number = server_codes(error)
    if sqlstate is not None:
        return sqlstate[:2] == POSTGRES_RESOURCE_CLASS
    return number in MYSQL_RESOURCE_ERRORS


def init_app(app: Flask) -> None:
    with app.app_context():
        engine = db.engine
        app.extensions["database_resource_faults"] = ResourceFaults(engine)
        breaker = guard_connections(engine, app.config["BREAKER_FAILURES"], app.config["BREAKER_RESET_SECONDS"])
        if engine.dialect.name in MYSQL_DIALECTS:
            bound_each_session(
                engine,
                app.config["DB_STATEMENT_TIMEOUT"],
                app.config["DB_LOCK_TIMEOUT"],
                app.config["DB_DEAD_PEER_SECONDS"],
            )
        metrics.watch_pool(engine)
    app.extensions.setdefault("breakers", {})["database"] = breaker
    # Registered after Flask-SQLAlchemy's, so it runs first and leaves nothing for that one to close.
    app.teardown_appcontext(close_session)


def guard_connections(engine: Engine, failure_threshold: int, reset_seconds: float) -> CircuitBreaker:
    dbapi = engine.dialect.loaded_dbapi
    breaker = CircuitBreaker("database", failure_threshold, reset_seconds, failure_types=(dbapi.Error,))

    @event.listens_for(engine, "do_connect")
    def connect_unless_open(dialect: Dialect, _record: object, cargs: list[Any], cparams: dict[str, Any]) -> Any:
        try:
            return breaker.call(lambda: dialect.connect(*cargs, **cparams))
        except CircuitOpen as refused:
            # A DBAPI error, as a refused connection would be: SQLAlchemy wraps it in OperationalError.
            raise dbapi.OperationalError(str(refused)) from refused

    @event.listens_for(engine, "handle_error")
    def count_dropped_connections(context: ExceptionContext) -> None:
        # A connection that died under a statement or its ping is a failure of the database, as a
        # refused connect is. One that timed out (no answer within DB_DEAD_PEER_SECONDS: a
        # partition, a frozen host) opens the breaker at once: every other connection of the pool
        # would wait as long, and so would a reconnect. (A connection the server closed, as
        # pg_terminate_backend does, only counts: the server answered.)
        if not context.is_disconnect:
            return
        if "timed out" in str(context.original_exception).lower():
            breaker.trip(context.original_exception)
        else:
            breaker.record_failure(context.original_exception)

    return breaker


def bound_each_session(engine: Engine, statement_timeout: float, lock_timeout: float, dead_peer_seconds: float) -> None:
    """MariaDB/MySQL: the session's bounds, set as each connection opens, and its socket watched
    for a dead peer."""

    @event.listens_for(engine, "connect")
    def set_bounds(dbapi_connection: Any, _record: object) -> None:
        mariadb = "mariadb" in str(getattr(dbapi_connection, "server_version", "")).lower()
        with dbapi_connection.cursor() as cursor:
            for statement in mysql_bounds(mariadb, statement_timeout, lock_timeout):
                cursor.execute(statement)
        # PyMySQL has no setting for it: its socket (a private attribute, there since its start).
        sock = getattr(dbapi_connection, "_sock", None)
        if dead_peer_seconds and isinstance(sock, socket.socket) and sock.family in {socket.AF_INET, socket.AF_INET6}:
            watch_for_a_dead_peer(sock, dead_peer_seconds)


def watch_for_a_dead_peer(sock: socket.socket, seconds: float) -> None:
    """libpq's keepalive settings for Postgres (``dead_peer_probes``), on a socket of our own
    driver's: the statement waiting on a dead peer fails within ``seconds``, rather than after its
    read timeout."""
    probes = dead_peer_probes(seconds)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, probes["keepalives_idle"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, probes["keepalives_interval"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, probes["keepalives_count"])
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, probes["tcp_user_timeout"])


def mysql_bounds(mariadb: bool, statement_timeout: float, lock_timeout: float) -> list[str]:
    """MariaDB bounds every statement (max_statement_time, seconds); MySQL only reads
    (max_execution_time, milliseconds). Both bound row locks and metadata locks (DDL) apart."""
    lock = max(1, math.ceil(lock_timeout)) if lock_timeout else MYSQL_NO_LOCK_BOUND
    statement = (
        f"SET SESSION max_statement_time = {statement_timeout:g}"
        if mariadb
        else f"SET SESSION max_execution_time = {round(statement_timeout * 1000)}"
    )
    return [statement, f"SET SESSION innodb_lock_wait_timeout = {lock}", f"SET SESSION lock_wait_timeout = {lock}"]


@contextmanager
def session_bounds(connection: Connection, statement_timeout: float, lock_timeout: float) -> Iterator[None]:
    """Other bounds for one connection's session (`flask deploy`: its migrations, its lock) in place
    of a request's; the connection is then closed, not pooled, so no request inherits them."""
    dialect = connection.dialect
    if dialect.name == "postgresql":
        statements = [
            f"SET statement_timeout = {round(statement_timeout * 1000)}",
            f"SET lock_timeout = {round(lock_timeout * 1000)}",
        ]
    elif dialect.name in MYSQL_DIALECTS:
        statements = mysql_bounds(bool(getattr(dialect, "is_mariadb", False)), statement_timeout, lock_timeout)
    else:  # SQLite: no server, nothing to bound
        yield
        return
    for statement in statements:
        connection.exec_driver_sql(statement)
    if connection.in_transaction():
        connection.commit()  # a SET rolled back would be undone (Postgres)
    try:
        yield
    finally:
        connection.invalidate()


# Readiness (api/health): whether the database takes writes now (not a standby, not set read-only),
# per dialect; and a read of the app's main table, which waits for no longer than a request's lock
# bound (a migration holding it shows).
WRITABLE = {
    "postgresql": "SELECT current_setting('transaction_read_only') = 'off'",
    **dict.fromkeys(MYSQL_DIALECTS, "SELECT @@global.read_only = 0"),
}


class DatabaseNotReady(RuntimeError):
    """The database answers, but cannot do the app's work now."""


def check_ready() -> None:
    """Raise unless the database answers, takes writes (none was just refused for want of a
    resource: ``ResourceFaults``), and its users table can be read."""
    refused = current_app.extensions["database_resource_faults"].recent()
    if refused:
        raise DatabaseNotReady(refused)
    with db.engine.connect() as connection:
        writable = WRITABLE.get(connection.dialect.name)
        if writable is not None and not connection.exec_driver_sql(writable).scalar():
            raise DatabaseNotReady("the database is read-only")
        connection.exec_driver_sql("SELECT 1 FROM users WHERE 1 = 0").all()


def close_session(_error: BaseException | None) -> None:
    try:
        db.session.remove()
    except (SQLAlchemyError, db.engine.dialect.loaded_dbapi.Error) as error:
        # The server went away after the view's last query: the response is already decided, and
        # the pool replaces the connection.
        log.warning("database session not closed cleanly (%s: %s)", type(error).__name__, error)
        db.session.registry.clear()
