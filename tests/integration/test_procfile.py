"""The Procfile as a Heroku-style platform runs it (honcho): the release command migrates the
database the platform names in DATABASE_URL (its postgres:// form), then the web process serves on
the PORT it is given, in production mode, with the token state in REDIS_URL."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
import requests
import sqlalchemy

from conftest import postgres_url
from contract import Api
from harness.paths import REPO_ROOT
from harness.polling import answers, until
from harness.ports import free_port

HONCHO = str(Path(sys.executable).with_name("honcho"))


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


def platform_environment(urls: tuple[str, str], key_prefix: str, port: int) -> dict[str, str]:
    """What such a platform sets: its own URLs, a port, and the secrets the operator added."""
    database_url, redis_url = urls
    return {
        **{k: v for k, v in os.environ.items() if not k.startswith(("APP_ENV", "FLASK_", "DATABASE", "REDIS"))},
        "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}",
        "APP_ENV": "production",
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "REDIS_KEY_PREFIX": key_prefix,
        "FLASK_SECRET_KEY": secrets.token_urlsafe(32),
        "JWT_SECRET_KEY": secrets.token_urlsafe(32),
        "PORT": str(port),
        "GUNICORN_WORKERS": "2",
    }


def honcho(*args: str) -> list[str]:
    # --env /dev/null: the platform's variables only, not the repository's .env.
    return [HONCHO, "--procfile", str(REPO_ROOT / "Procfile"), "--env", "/dev/null", *args]


def test_the_release_command_migrates_and_the_web_process_serves_on_port(settings, platform_urls):
    port = free_port()
    env = platform_environment(platform_urls, settings["REDIS_KEY_PREFIX"], port)
    release = subprocess.run(honcho("start", "release"), env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert release.returncode == 0, release.stdout[-3000:] + release.stderr[-2000:]
    engine = sqlalchemy.create_engine(settings["DATABASE_URL"], poolclass=sqlalchemy.pool.NullPool)
    with engine.connect() as connection:
        tables = set(sqlalchemy.inspect(connection).get_table_names())
    assert {"users", "roles", "alembic_version"} <= tables

    web = subprocess.Popen(
        honcho("start", "web"), env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        assert until(lambda: answers(f"{base}/api/readyz", timeout=2), 60, 0.5), "the web process never got ready"
        ready = requests.get(f"{base}/api/readyz", timeout=5).json()
        assert ready["checks"]["redis"]["status"] == "ok"
        api = Api(requests.Session(), base)
        tokens = api.tokens("platform@example.com")
        assert api.me(tokens["access_token"]).status_code == 200
    finally:
        web.send_signal(signal.SIGTERM)
        output, _ = web.communicate(timeout=60)
    assert web.returncode == 0 or b"Shutting down" in output, output.decode()[-3000:]
