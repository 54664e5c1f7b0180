"""Postgres and Redis elsewhere, over TLS (docs/security.md "Postgres and Redis elsewhere"): the app
verifies each server's certificate against the CA it is given, migrates, serves and revokes
through both, and refuses a server whose certificate another CA signed.

These servers are the module's own, not the tier's shared ones (tests/servers.py): they listen
with a certificate from a CA made here, and Redis on its TLS port only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import sqlalchemy
from testcontainers.core.container import DockerContainer

from api import create_app
from api.cli import deploy_command
from api.extensions import db
from contract import Api, assert_error, json_of
from docker_env import LABELS, base_image, ensure_image
from harness.polling import until
from harness.ports import free_port
from private_ca import PrivateCa
from servers import PG_PASSWORD, PG_USER, answers

# The server's key must be the postgres user's, and private: copied in before the entrypoint starts it.
POSTGRES_WITH_TLS = """
install -o postgres -g postgres -m 0600 /tls/server.key /var/lib/postgresql/server.key
install -o postgres -g postgres -m 0644 /tls/server.crt /var/lib/postgresql/server.crt
exec docker-entrypoint.sh postgres -c ssl=on \
  -c ssl_cert_file=/var/lib/postgresql/server.crt -c ssl_key_file=/var/lib/postgresql/server.key
"""


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory) -> Path:
    """The servers' certificate (for localhost and 127.0.0.1) and key, the CA that signed it
    (ca.pem), and another CA's certificate (other-ca.pem)."""
    folder = tmp_path_factory.mktemp("tls")
    ca = PrivateCa()
    certificate, key = ca.issue(["localhost"], addresses=("127.0.0.1",))
    (folder / "server.crt").write_bytes(certificate)
    (folder / "server.key").write_bytes(key)
    (folder / "ca.pem").write_bytes(ca.pem)
    (folder / "other-ca.pem").write_bytes(PrivateCa("another CA").pem)
    # Readable by the servers' own users (a test's key; Postgres gets a private copy of it).
    for path in (folder, *folder.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return folder


def started(container: DockerContainer, ready, what: str) -> DockerContainer:
    container.start()
    wrapped = container.get_wrapped_container()

    def ready_or_exited() -> bool:
        wrapped.reload()
        return ready() or wrapped.status == "exited"

    assert until(ready_or_exited, timeout=120) and wrapped.status != "exited", (
        f"{what} did not start: {container.get_logs()}"
    )
    return container


def serving_tls_files(
    docker_client, tls_files: Path, image_setting: str, container_port: int
) -> tuple[DockerContainer, int]:
    """A container of the image .env selects for ``image_setting``, with the TLS files at /tls and
    ``container_port`` published on a free port (returned too)."""
    image = base_image(image_setting)
    ensure_image(docker_client, image)
    port = free_port()
    container = (
        DockerContainer(image)
        .with_bind_ports(container_port, port)
        .with_volume_mapping(str(tls_files), "/tls", "ro")
        .with_kwargs(labels=LABELS)
    )
    return container, port


@pytest.fixture(scope="module")
def postgres_tls_url(docker_client, tls_files) -> Iterator[str]:
    container, port = serving_tls_files(docker_client, tls_files, "POSTGRES_IMAGE", 5432)
    for name, value in (("POSTGRES_USER", PG_USER), ("POSTGRES_PASSWORD", PG_PASSWORD), ("POSTGRES_DB", "app")):
        container.with_env(name, value)
    container.with_kwargs(labels=LABELS, entrypoint=["bash", "-c", POSTGRES_WITH_TLS])
    url = f"postgresql+psycopg2://{PG_USER}:{PG_PASSWORD}@localhost:{port}/app"
    check = sqlalchemy.create_engine(
        url, poolclass=sqlalchemy.pool.NullPool, connect_args={"sslmode": "require", "connect_timeout": 2}
    )
    started(container, lambda: answers(check), "Postgres with TLS")
    yield url
    container.stop()


@pytest.fixture(scope="module")
def redis_tls_port(docker_client, tls_files) -> Iterator[int]:
    container, port = serving_tls_files(docker_client, tls_files, "REDIS_IMAGE", 6379)
    container.with_command(
        "redis-server --port 0 --tls-port 6379 --tls-cert-file /tls/server.crt"
        " --tls-key-file /tls/server.key --tls-ca-cert-file /tls/ca.pem --tls-auth-clients no"
    )
    client = redis.Redis.from_url(f"rediss://localhost:{port}/0", ssl_ca_certs=str(tls_files / "ca.pem"))

    def pings() -> bool:
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False

    started(container, pings, "Redis with TLS")
    yield port
    client.close()
    container.stop()


def settings_for(postgres_tls_url: str, redis_tls_port: int, ca: Path) -> dict[str, str]:
    return {
        "APP_ENV": "test",
        "DATABASE_URL": postgres_tls_url,
        "PGSSLMODE": "verify-full",
        "PGSSLROOTCERT": str(ca),
        "BLACKLIST_STORAGE_TYPE": "redis",
        "REDIS_URL": f"rediss://localhost:{redis_tls_port}/0",
        "REDIS_CA_FILE": str(ca),
    }


def test_the_app_migrates_serves_and_revokes_over_tls_it_verified(postgres_tls_url, redis_tls_port, tls_files):
    app = create_app(settings_for(postgres_tls_url, redis_tls_port, tls_files / "ca.pem"))
    deployed = app.test_cli_runner().invoke(deploy_command)
    assert deployed.exit_code == 0, deployed.output
    api = Api(app.test_client())
    tokens = api.tokens("over-tls@example.com")
    assert json_of(api.me(tokens["access_token"]))["email"] == "over-tls@example.com"
    assert api.logout(tokens["access_token"]).status_code == 204
    assert_error(api.me(tokens["access_token"]), 401, "token_revoked")  # the revocation went to Redis
    assert api.get("/api/readyz").status_code == 200
    with app.app_context():
        with db.engine.connect() as connection:
            encrypted = connection.scalar(sqlalchemy.text("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"))
        db.engine.dispose()
    assert encrypted is True
    # The Redis port speaks TLS only: what the app stored went over it.
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host="localhost", port=redis_tls_port, socket_timeout=2).ping()


def test_servers_whose_certificates_another_ca_signed_are_refused(postgres_tls_url, redis_tls_port, tls_files):
    app = create_app(settings_for(postgres_tls_url, redis_tls_port, tls_files / "other-ca.pem"))
    api = Api(app.test_client())
    details = assert_error(api.get("/api/readyz"), 503, "service_unavailable")["details"]
    assert (details["database"]["status"], details["redis"]["status"]) == ("error", "error")
    refused = api.post(
        "/api/auth/register", json={"email": "refused@example.com", "password": "long enough passphrase"}
    )
    assert assert_error(refused, 503, "service_unavailable")["details"]["dependency"] == "database"
    with app.app_context():
        db.engine.dispose()
