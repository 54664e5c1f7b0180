"""The Procfile as a Heroku-style platform runs it (honcho): the release command migrates the
database the platform names in DATABASE_URL (its postgres:// form), then the web process serves on
the PORT it is given, in production mode, with the token state in REDIS_URL; the worker and the
scheduler run the job queue on the same Redis."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import tempfile
import typing
from pathlib import Path

import requests
import sqlalchemy

from api import create_app
from api.mail import Mail
from contract import Api
from harness.paths import REPO_ROOT
from harness.polling import answers, until
from harness.ports import free_port
from smtp_inbox import smtp_inbox

HONCHO = str(Path(sys.executable).with_name("honcho"))


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


def test_the_worker_and_scheduler_processes_send_mail_and_run_chores(settings, platform_urls):
    """The platform's one Redis carries the queue too (JOBS_REDIS_URL, keys "jobs:*"): a mail
    queued by the app arrives through the worker process, and the scheduler process's chore runs."""
    env = {
        **platform_environment(platform_urls, settings["REDIS_KEY_PREFIX"], free_port()),
        "JOBS_REDIS_URL": platform_urls[1],
        "PRUNE_TOKENS_SCHEDULE": "* * * * * *",
        "LOG_LEVEL": "INFO",
    }
    release = subprocess.run(honcho("start", "release"), env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    assert release.returncode == 0, release.stdout[-3000:] + release.stderr[-2000:]
    with smtp_inbox() as (controller, inbox), tempfile.TemporaryFile() as output:
        env.update(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(controller.port))
        jobs = subprocess.Popen(
            honcho("start", "worker", "scheduler"), env=env, cwd=REPO_ROOT, stdout=output, stderr=subprocess.STDOUT
        )
        try:
            app = create_app(env)
            with app.app_context():
                app.extensions["mailer"].send(Mail(("platform@example.com",), "queued", "through the worker"))
            assert until(lambda: inbox.to("platform@example.com"), timeout=60), read(output)
            assert until(lambda: "prune-tokens: removed" in read(output), timeout=30), read(output)
        finally:
            jobs.send_signal(signal.SIGTERM)
            jobs.wait(timeout=60)


def read(output: typing.IO[bytes]) -> str:
    output.seek(0)
    return output.read().decode(errors="replace")[-4000:]
