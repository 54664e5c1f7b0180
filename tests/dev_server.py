"""`make dev` as a developer runs it (SQLite, the database token store, the SPA served by Flask,
gunicorn reloading on edits), on a free port, a database of its own and the tests' copy of the
source (web_source): a fixture for the tiers
that test it directly."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

import pytest
import requests

from api import create_app
from api.cli import create_admin_command
from contract import PASSWORD
from harness.paths import REPO_ROOT
from harness.polling import until
from harness.ports import free_port


@pytest.fixture(scope="session")
def dev_server_settings() -> dict[str, str]:
    """The app's settings `make dev` is given besides its own (a tier may change one, as the fuzz
    tier does)."""
    return {}


@pytest.fixture(scope="session")
def dev_server(web_source, dev_server_settings, tmp_path_factory):
    """`make dev` on a free port and a database of its own: SQLite, the database token store, the
    SPA served by Flask. Yields its base URL and an admin's credentials."""
    home = tmp_path_factory.mktemp("make-dev")
    database, log = home / "dev.sqlite", home / "make-dev.log"
    port = free_port()
    process = subprocess.Popen(
        ["make", "--no-print-directory", "dev", f"DEV_PORT={port}", f"DEV_DB={database}", f"DEV_SOURCE={web_source}"],
        cwd=REPO_ROOT,
        env={**os.environ, **dev_server_settings},
        stdout=log.open("w"),  # a file, not a pipe: a pipe nobody reads would stall gunicorn's logging
        stderr=subprocess.STDOUT,
        start_new_session=True,  # make, its shell and gunicorn: one process group to stop
    )
    base = f"http://127.0.0.1:{port}"

    def answers():
        try:
            return requests.get(f"{base}/api/healthz", timeout=5).status_code == 200
        except requests.RequestException:  # refused while it starts, or slow on a busy machine
            return process.poll() is not None  # gave up: stop waiting

    try:
        assert until(answers, timeout=60, interval=0.3) and process.poll() is None, log.read_text()[-3000:]
        email = f"fuzz-admin-{uuid.uuid4().hex[:8]}@example.com"
        assert requests.post(f"{base}/api/auth/register", json={"email": email, "password": PASSWORD}, timeout=30).ok
        promote_to_admin({"APP_ENV": "development", "DATABASE_URL": f"sqlite:///{database}"}, email)
        yield {"base_url": base, "email": email}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        # A worker still booting when the signal comes can miss it (it still runs the master's
        # handler, inherited across fork): the master then waits out its graceful timeout (30 s).
        process.wait(timeout=60)


def promote_to_admin(settings: dict, email: str) -> None:
    app = create_app({**settings, "BLACKLIST_STORAGE_TYPE": "database"})
    result = app.test_cli_runner().invoke(create_admin_command, ["--email", email])
    assert result.exit_code == 0, result.output
