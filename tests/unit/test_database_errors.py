"""One classification of the database's errors (api/database.py), by the codes the servers give:
Postgres's SQLSTATE, MariaDB/MySQL's error number. The errors here are the drivers' own classes
with the codes the servers send (tests/integration/test_database_faults.py has the servers send them)."""

import psycopg2
import pymysql
import pytest
import sqlalchemy
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError

from api.database import (
    RESOURCE_FAULT_MEMORY_SECONDS,
    DatabaseFault,
    ResourceFaults,
    fault_of,
    is_resource_fault,
    mysql_bounds,
)
from fake_clock import FakeClock


class PostgresError(psycopg2.Error):
    """psycopg2 sets pgcode from the server's answer only; this one carries it as the server would."""

    def __init__(self, pgcode: str):
        super().__init__(f"SQLSTATE {pgcode}")
        self._code = pgcode

    @property
    def pgcode(self) -> str:  # type: ignore[override]
        return self._code


def wrapped(driver_error: Exception, kind: type[DBAPIError] = DBAPIError) -> DBAPIError:
    return kind("INSERT INTO users ...", {}, driver_error)


@pytest.mark.parametrize(
    ("sqlstate", "fault"),
    [
        ("25006", DatabaseFault.UNAVAILABLE),  # read-only transaction
        ("53100", DatabaseFault.UNAVAILABLE),  # disk full
        ("53300", DatabaseFault.UNAVAILABLE),  # too many connections
        ("57P01", DatabaseFault.UNAVAILABLE),  # admin shutdown
        ("57014", DatabaseFault.UNAVAILABLE),  # statement timeout
        ("55P03", DatabaseFault.UNAVAILABLE),  # lock timeout
        ("08006", DatabaseFault.UNAVAILABLE),  # connection failure
        ("40001", DatabaseFault.CONFLICT),  # serialization failure
        ("40P01", DatabaseFault.CONFLICT),  # deadlock
        ("23505", None),  # unique violation: the view's to answer (409)
        ("42P01", None),  # undefined table: a bug, a 500
    ],
)
def test_postgres_errors_by_sqlstate(sqlstate, fault):
    assert fault_of(wrapped(PostgresError(sqlstate))) is fault


@pytest.mark.parametrize(
    ("number", "fault"),
    [
        (1290, DatabaseFault.UNAVAILABLE),  # --read-only
        (1040, DatabaseFault.UNAVAILABLE),  # too many connections
        (1021, DatabaseFault.UNAVAILABLE),  # disk full
        (1205, DatabaseFault.UNAVAILABLE),  # lock wait timeout
        (1969, DatabaseFault.UNAVAILABLE),  # MariaDB statement timeout
        (3024, DatabaseFault.UNAVAILABLE),  # MySQL statement timeout
        (2013, DatabaseFault.UNAVAILABLE),  # lost connection
        (1213, DatabaseFault.CONFLICT),  # deadlock
        (1062, None),  # duplicate entry
    ],
)
def test_mysql_errors_by_number(number, fault):
    assert fault_of(wrapped(pymysql.err.InternalError(number, "message"))) is fault


def test_what_sqlalchemy_calls_operational_stays_unavailable_and_integrity_stays_the_views():
    assert fault_of(wrapped(psycopg2.OperationalError("server closed the connection"), OperationalError)) is (
        DatabaseFault.UNAVAILABLE
    )
    assert fault_of(wrapped(psycopg2.IntegrityError("duplicate key"), IntegrityError)) is None
    assert fault_of(ValueError("not a database error")) is None


def test_mariadb_and_mysql_name_their_statement_bound_differently():
    assert mysql_bounds(True, 5, 2) == [
        "SET SESSION max_statement_time = 5",
        "SET SESSION innodb_lock_wait_timeout = 2",
        "SET SESSION lock_wait_timeout = 2",
    ]
    assert mysql_bounds(False, 2.5, 0.5)[0] == "SET SESSION max_execution_time = 2500"
    assert mysql_bounds(False, 2.5, 0.5)[1] == "SET SESSION innodb_lock_wait_timeout = 1"  # whole seconds, at least 1
    assert mysql_bounds(True, 0, 0)[1:] == [
        "SET SESSION innodb_lock_wait_timeout = 31536000",
        "SET SESSION lock_wait_timeout = 31536000",
    ]


@pytest.mark.parametrize(
    ("driver_error", "for_want_of_a_resource"),
    [
        (PostgresError("53100"), True),  # disk full
        (PostgresError("53300"), True),  # too many connections
        (PostgresError("25006"), False),  # read-only: readiness sees that itself
        (PostgresError("55P03"), False),  # lock timeout
        (pymysql.err.OperationalError(1021, "Disk full"), True),
        (pymysql.err.OperationalError(1040, "Too many connections"), True),
        (pymysql.err.OperationalError(1205, "Lock wait timeout exceeded"), False),
    ],
)
def test_refusals_for_want_of_a_resource_are_told_apart(driver_error, for_want_of_a_resource):
    assert is_resource_fault(wrapped(driver_error, OperationalError)) is for_want_of_a_resource


def test_readiness_remembers_a_refusal_until_a_write_commits_or_its_memory_ends():
    clock = FakeClock()
    engine = sqlalchemy.create_engine("sqlite://")
    faults = ResourceFaults(engine, clock)
    faults.last = (clock(), "OperationalError: could not extend file\nHINT: check free disk space")
    clock.elapse(3)
    assert faults.recent() == "3 s ago a request met OperationalError: could not extend file"
    clock.elapse(RESOURCE_FAULT_MEMORY_SECONDS)
    assert faults.recent() is None
    faults.last = (clock(), "OperationalError: could not extend file")
    with engine.begin() as connection:  # a write commits
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    assert faults.recent() is None
