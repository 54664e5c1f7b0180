"""The database connection's failure modes, so that a database fault is a 503, never a 500.

- Connecting goes through a circuit breaker: while Postgres is down, requests fail at once instead
  of each waiting for its own connect timeout.
- The request's session is closed in a teardown that survives a connection the server dropped
  after the view's last query (Flask-SQLAlchemy's own teardown would raise, and gunicorn would
  answer its own empty 500).
- Pooled connections are pinged on checkout (``pool_pre_ping``), so the first request after the
  database is back uses a fresh connection.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask
from sqlalchemy import Dialect, Engine, event
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError, SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from . import metrics
from .breaker import CircuitBreaker, CircuitOpen
from .extensions import db

# What "the database is unavailable" looks like from SQLAlchemy: refused or dropped connections,
# a pool with no connection free in time.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError, PoolTimeoutError, DisconnectionError)

log = logging.getLogger(__name__)


def init_app(app: Flask) -> None:
    with app.app_context():
        breaker = guard_connections(db.engine, app.config["BREAKER_FAILURES"], app.config["BREAKER_RESET_SECONDS"])
        metrics.watch_pool(db.engine)
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

    return breaker


def close_session(_error: BaseException | None) -> None:
    try:
        db.session.remove()
    except (SQLAlchemyError, db.engine.dialect.loaded_dbapi.Error) as error:
        # The server went away after the view's last query: the response is already decided, and
        # the pool replaces the connection.
        log.warning("database session not closed cleanly (%s: %s)", type(error).__name__, error)
        db.session.registry.clear()
