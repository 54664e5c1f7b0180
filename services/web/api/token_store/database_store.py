"""Database backend: the ``auth_state`` table, on its own short transactions.

Each call takes its own connection from the engine, so the token store's state is committed at once and never
mixed into the request's ORM session. Upserts use ``ON CONFLICT``, which Postgres and SQLite share, and return
the row as it is then. MariaDB/MySQL have ``ON DUPLICATE KEY UPDATE`` instead, with no ``RETURNING``: there the
row the upsert wrote or kept (and locked) is read in the same transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from typing import cast as type_cast

from sqlalchemy import ColumnElement, Connection, Integer, String, Table, and_, case, cast, delete, literal, or_, select
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError

from ..database import is_database_fault
from ..extensions import db
from ..models import TokenStoreEntry
from ..models.columns import MYSQL_DIALECTS
from . import Entry, StoreUnavailable, TokenStore

table = type_cast(Table, TokenStoreEntry.__table__)  # a mapped class's table
INSERT_FOR_DIALECT = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}


def _live(now: float) -> ColumnElement[bool]:
    return or_(table.c.expires_at.is_(None), table.c.expires_at > now)


def _expired(now: float) -> ColumnElement[bool]:
    return and_(table.c.expires_at.is_not(None), table.c.expires_at <= now)


class DatabaseStore(TokenStore):
    kind = "database"

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        try:
            with db.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as error:
            if not is_database_fault(error):
                raise
            raise StoreUnavailable(f"database: {error}") from error

    def _insert(self) -> Any:  # the dialect's Insert, with on_conflict_do_update
        return INSERT_FOR_DIALECT[db.engine.dialect.name](table)

    def _on_mysql(self) -> bool:
        return db.engine.dialect.name in MYSQL_DIALECTS

    def _mysql_upsert(self, values: Any, assignments: Callable[[Any], list[tuple[str, Any]]]) -> Any:
        """INSERT ... ON DUPLICATE KEY UPDATE, its assignments in the order given: MySQL applies them
        in turn, each seeing the ones before (so ``value`` goes first, while ``expires_at`` is still
        the stored row's)."""
        statement = mysql.insert(table).values(values)
        return statement.on_duplicate_key_update(assignments(statement.inserted))

    def _locked_row(self, connection: Connection, key: str) -> tuple[str, float | None]:
        row = connection.execute(
            select(table.c.value, table.c.expires_at).where(table.c.key == key).with_for_update()
        ).one()
        return row.value, row.expires_at

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self.clock() + ttl

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        with self._transaction() as connection:
            rows = connection.execute(
                select(table.c.key, table.c.value).where(table.c.key.in_(keys), _live(self.clock()))
            )
            found: dict[str, str] = {key: value for key, value in rows.all()}  # noqa: C416 - rows, not pairs
        return [found.get(k) for k in keys]

    def set_many(self, entries: Sequence[Entry]) -> None:
        rows = {key: {"key": key, "value": value, "expires_at": self._expiry(ttl)} for key, value, ttl in entries}
        if self._on_mysql():
            statement = self._mysql_upsert(
                list(rows.values()), lambda new: [("value", new.value), ("expires_at", new.expires_at)]
            )
        else:
            statement = self._insert().values(list(rows.values()))
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={"value": statement.excluded.value, "expires_at": statement.excluded.expires_at},
            )
        with self._transaction() as connection:
            connection.execute(statement)

    def add(self, key: str, value: str, ttl: float) -> str | None:
        now = self.clock()
        if self._on_mysql():
            expired = _expired(now)
            statement = self._mysql_upsert(
                {"key": key, "value": value, "expires_at": now + ttl},
                lambda new: [
                    ("value", case((expired, new.value), else_=table.c.value)),
                    ("expires_at", case((expired, new.expires_at), else_=table.c.expires_at)),
                ],
            )
            with self._transaction() as connection:
                connection.execute(statement)
                stored = self._locked_row(connection, key)
            # Ours, to the last bit of its expiry (a DOUBLE keeps the float we sent), or another's.
            return None if stored == (value, now + ttl) else stored[0]
        statement = self._insert().values(key=key, value=value, expires_at=now + ttl)
        # Replace only an expired row; a live one means someone else got there first.
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={"value": statement.excluded.value, "expires_at": statement.excluded.expires_at},
            where=_expired(now),
        ).returning(table.c.key)
        with self._transaction() as connection:
            if connection.execute(statement).first() is not None:
                return None
            return connection.scalar(select(table.c.value).where(table.c.key == key))

    def incr(self, key: str, ttl: float | None = None) -> int:
        now = self.clock()
        expired = _expired(now)
        counted = case((expired, literal("1")), else_=cast(cast(table.c.value, Integer) + 1, String))
        if self._on_mysql():
            statement = self._mysql_upsert(
                {"key": key, "value": "1", "expires_at": self._expiry(ttl)},
                lambda new: [
                    ("value", counted),
                    ("expires_at", case((expired, new.expires_at), else_=table.c.expires_at)),
                ],
            )
            with self._transaction() as connection:
                connection.execute(statement)
                return int(self._locked_row(connection, key)[0])
        statement = self._insert().values(key=key, value="1", expires_at=self._expiry(ttl))
        statement = statement.on_conflict_do_update(
            index_elements=[table.c.key],
            set_={
                "value": counted,
                "expires_at": case((expired, statement.excluded.expires_at), else_=table.c.expires_at),
            },
        ).returning(table.c.value)
        with self._transaction() as connection:
            return int(connection.execute(statement).scalar_one())

    def ttl(self, key: str) -> float | None:
        now = self.clock()
        with self._transaction() as connection:
            expires_at = connection.scalar(
                select(table.c.expires_at).where(table.c.key == key, table.c.expires_at > now)
            )
        return None if expires_at is None else expires_at - now

    def delete(self, *keys: str) -> None:
        with self._transaction() as connection:
            connection.execute(delete(table).where(table.c.key.in_(keys)))

    def ping(self) -> None:
        with self._transaction() as connection:
            connection.execute(select(literal(1)))

    def prune(self) -> int:
        with self._transaction() as connection:
            result = connection.execute(
                delete(table).where(table.c.expires_at.is_not(None), table.c.expires_at <= self.clock())
            )
        return result.rowcount
