"""Real Postgres and Redis in containers (testcontainers), the official images or their local
stand-ins as .env selects: the integration tier's servers, and the system tier's for a host's
releases (test_host_releases.py); a plugin of tests/conftest.py, started only when a test asks.
Each test gets its own database and its own Redis key prefix. The
modules that run on MariaDB too (migrations, the database token store) say so by parametrizing
``database_server``; its server starts only then."""

from __future__ import annotations

import secrets
import subprocess
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
from harness.paths import REPO_ROOT
from harness.polling import until
from harness.ports import free_port

PG_USER, PG_PASSWORD = "app", "integration-test-password"
MARIADB_ROOT_PASSWORD = "integration-test-password"


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


@pytest.fixture(scope="session")
def mariadb(docker_client):
    from testcontainers.core.container import DockerContainer

    # The official image when it can be had, else a stand-in from Debian's mariadb-server.
    chosen = subprocess.run(
        [REPO_ROOT / "compose/scripts/optional-images.sh", "MARIADB_IMAGE"], capture_output=True, text=True
    )
    assert chosen.returncode == 0, chosen.stdout[-2000:] + chosen.stderr[-2000:]
    image = base_image("MARIADB_IMAGE")
    ensure_image(docker_client, image)
    container = (
        DockerContainer(image)
        .with_env("MARIADB_ROOT_PASSWORD", MARIADB_ROOT_PASSWORD)
        .with_bind_ports(3306, free_port())
        .with_kwargs(labels=LABELS)
    )
    container.start()
    admin = sqlalchemy.create_engine(mariadb_url(container, ""), poolclass=sqlalchemy.pool.NullPool)
    assert until(lambda: answers(admin), timeout=120), container.get_logs()
    yield container
    container.stop()


def answers(engine: sqlalchemy.Engine) -> bool:
    """The server behind ``engine`` answers a query; False while it starts."""
    try:
        with engine.connect() as connection:
            return connection.scalar(sqlalchemy.text("SELECT 1")) == 1
    except sqlalchemy.exc.OperationalError:
        return False


def mariadb_url(mariadb, database: str) -> str:
    return f"mysql+pymysql://root:{MARIADB_ROOT_PASSWORD}@127.0.0.1:{mariadb.get_exposed_port(3306)}/{database}"


def postgres_url(postgres, database: str) -> str:
    port = postgres.get_exposed_port(5432)
    return f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@127.0.0.1:{port}/{database}"


@pytest.fixture
def redis_url(redis_server) -> str:
    return f"redis://127.0.0.1:{redis_server.get_exposed_port(6379)}/0"


@pytest.fixture
def database_server() -> str:
    """The server a test's database is on; a module that runs on MariaDB too parametrizes this."""
    return "postgres"


@pytest.fixture
def empty_database(request, database_server):
    """A new, empty database on the shared server; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    server = request.getfixturevalue(database_server)
    if database_server == "mariadb":
        url, admin_url = mariadb_url(server, name), mariadb_url(server, "")
        create, drop = f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4", f"DROP DATABASE IF EXISTS `{name}`"
    else:
        url, admin_url = postgres_url(server, name), postgres_url(server, "app")
        create, drop = f'CREATE DATABASE "{name}"', f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    # No pool: a test may restart the server between create and drop.
    admin = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=sqlalchemy.pool.NullPool)
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(create))
    yield url
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(drop))
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
    # Every key, command and channel, as a platform's Redis gives its one user (Redis 7 gives a new
    # ACL user no channel unless told: the job queue's control channel needs one).
    store.acl_setuser(name, enabled=True, passwords=[f"+{password}"], keys=["*"], channels=["*"], commands=["+@all"])
    pg_port = postgres.get_exposed_port(5432)
    yield f"postgres://{name}:{password}@127.0.0.1:{pg_port}/{database}", f"redis://{name}:{password}@{host}:{port}/0"
    store.acl_deluser(name)
    store.close()
    with admin.connect() as connection:
        # Its tables are the role's: the database goes first (empty_database drops it if it is there).
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)'))
        connection.execute(sqlalchemy.text(f"DROP ROLE {name}"))
    admin.dispose()
