"""Two real gunicorn servers sharing Postgres and Redis: a token revoked through one is refused by the
other, and by every worker of both."""

import os
import subprocess
import sys
import time

import pytest
import requests

from contract import Api, assert_error
from harness.paths import WEB_DIR
from harness.ports import free_port


def start_gunicorn(settings, workers=2):
    port = free_port()
    env = {**os.environ, **settings, "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": str(workers)}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "api:create_app()"],
        cwd=WEB_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            if requests.get(f"{base}/api/healthz", timeout=1).status_code == 200:
                return process, base
        except requests.ConnectionError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError(f"gunicorn did not start: {process.stdout.read().decode()[-2000:]}")


@pytest.fixture
def two_servers(app, settings):
    """``app`` has migrated this test's database; two gunicorn masters now serve it."""
    servers = [start_gunicorn(settings, workers=3) for _ in range(2)]
    yield [Api(requests.Session(), base) for _, base in servers]
    for process, _ in servers:
        process.terminate()
        process.wait(timeout=30)


def test_revocation_through_one_server_holds_in_the_other(two_servers):
    first, second = two_servers
    tokens = first.tokens()
    assert second.me(tokens["access_token"]).status_code == 200
    assert first.logout(tokens["access_token"]).status_code == 204
    # Fresh connections, so the requests spread over the workers of the second server.
    for _ in range(12):
        assert_error(Api(requests, second.base_url).me(tokens["access_token"]), 401, "token_revoked")
    assert_error(second.refresh(tokens["refresh_token"]), 401, "token_revoked")


def test_rotation_through_one_server_is_seen_by_the_other(two_servers):
    first, second = two_servers
    tokens = first.tokens()
    assert first.refresh(tokens["refresh_token"]).status_code == 200
    assert_error(second.refresh(tokens["refresh_token"]), 401, "token_revoked")


def test_a_user_disabled_through_one_server_is_refused_by_every_worker_of_the_other(app, two_servers):
    from api.extensions import db
    from api.models import Role, User

    first, second = two_servers
    first.register("admin@example.com")
    with app.app_context():
        admin = User.by_email("admin@example.com")
        admin.role = db.session.scalar(db.select(Role).where(Role.name == "admin"))
        db.session.commit()
    admin_token = first.tokens("admin@example.com")["access_token"]
    tokens = first.tokens()
    # The profile is cached: what a disabled user must not keep using.
    for _ in range(6):
        assert Api(requests, second.base_url).me(tokens["access_token"]).status_code == 200
    someone = first.me(tokens["access_token"]).json()["id"]
    assert first.update_user(admin_token, someone, active=False).status_code == 200
    for _ in range(12):
        assert_error(Api(requests, second.base_url).me(tokens["access_token"]), 401, "token_revoked")
