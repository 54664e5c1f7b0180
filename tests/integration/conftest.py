"""Real Postgres and Redis in containers (testcontainers), the official images or their local
stand-ins as .env selects. Each test gets its own database and its own Redis key prefix."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import redis
import sqlalchemy

from api import create_app
from api.cli import deploy_command
from contract import Api
from docker_env import LABELS, base_image, docker_client_or_skip, ensure_image, remove_leftovers
from harness.ports import free_port

PG_USER, PG_PASSWORD = "app", "integration-test-password"


@pytest.fixture(scope="session")
def docker_client():
    client = docker_client_or_skip()
    remove_leftovers(client)
    yield client
    remove_leftovers(client)


@pytest.fixture(scope="session")
def postgres(docker_client):
    from testcontainers.community.postgres import PostgresContainer

    image = base_image("POSTGRES_IMAGE")
    ensure_image(docker_client, image)
    # A fixed host port, so the server keeps its address across the restarts the tests cause.
    container = (
        PostgresContainer(image, username=PG_USER, password=PG_PASSWORD, dbname="app")
        .with_bind_ports(5432, free_port())
        .with_kwargs(labels=LABELS)
    )
    container.start()
    yield container
    container.stop()


@pytest.fixture(scope="session")
def redis_server(docker_client):
    from testcontainers.community.redis import RedisContainer

    image = base_image("REDIS_IMAGE")
    ensure_image(docker_client, image)
    container = (
        RedisContainer(image)
        .with_command("redis-server --appendonly yes")
        .with_bind_ports(6379, free_port())
        .with_kwargs(labels=LABELS)
    )
    container.start()
    yield container
    container.stop()


def postgres_url(postgres, database: str) -> str:
    port = postgres.get_exposed_port(5432)
    return f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/{database}"


@pytest.fixture
def redis_url(redis_server) -> str:
    return f"redis://127.0.0.1:{redis_server.get_exposed_port(6379)}/0"


@pytest.fixture
def empty_database(postgres):
    """A new, empty database on the shared server; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    # No pool: a test may restart the server between create and drop.
    admin = sqlalchemy.create_engine(
        postgres_url(postgres, "app"), isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool
    )
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    yield postgres_url(postgres, name)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(empty_database, redis_url):
    """Config for an app on this test's database and a Redis namespace of its own."""
    return {
        "APP_ENV": "test",
        "DATABASE_URL": empty_database,
        "BLACKLIST_STORAGE_TYPE": "redis",
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": f"t{uuid.uuid4().hex[:8]}:",
    }


@pytest.fixture
def app(settings):
    app = create_app(settings)
    result = app.test_cli_runner().invoke(deploy_command)
    assert result.exit_code == 0, result.output
    yield app
    with app.app_context():
        from api.extensions import db

        db.engine.dispose()


@pytest.fixture
def api(app):
    return Api(app.test_client())


@pytest.fixture
def platform_urls(postgres, redis_server, empty_database) -> Iterator[tuple[str, str]]:
    """A database and a Redis user as a platform provisions them: users of their own with long
    random passwords (production refuses short ones), given as postgres:// and redis:// URLs."""
    name, password = f"platform_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(32)
    database = urlsplit(empty_database).path.lstrip("/")
    admin = sqlalchemy.create_engine(
        postgres_url(postgres, "app"), isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool
    )
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'"))
        connection.execute(sqlalchemy.text(f'ALTER DATABASE "{database}" OWNER TO {name}'))
    host, port = "127.0.0.1", redis_server.get_exposed_port(6379)
    store = redis.Redis(host=host, port=int(port))
    store.acl_setuser(name, enabled=True, passwords=[f"+{password}"], keys=["*"], commands=["+@all"])
    pg_port = postgres.get_exposed_port(5432)
    yield f"postgres://{name}:{password}@127.0.0.1:{pg_port}/{database}", f"redis://{name}:{password}@{host}:{port}/0"
    store.acl_deluser(name)
    store.close()
    with admin.connect() as connection:
        # Its tables are the role's: the database goes first (empty_database drops it if it is there).
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        connection.execute(sqlalchemy.text(f"DROP ROLE {name}"))
    admin.dispose()
