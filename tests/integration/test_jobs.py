"""Background jobs (api/jobs.py) on a real Redis, as the queue's own ACL user (compose/redis/jobs.acl),
with the real worker and scheduler (the `celery` commands the containers run, as processes here)
and a real SMTP server: a mail waits for a server that is down and arrives once; a refusal is a dead
letter at once; a worker killed under a job leaves it to the next; two schedulers run a chore once
per tick. After each, Redis's ACL log holds no refusal: the list is the broker's real traffic."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from api import create_app
from api.cli import jobs_command
from api.jobs import DEAD_LETTERS, KEY_PREFIX, QUEUE
from contract import Api
from harness.paths import REPO_ROOT
from harness.polling import until
from harness.ports import free_port
from smtp_inbox import Inbox, smtp_inbox

CELERY = REPO_ROOT / ".venv/bin/celery"
WEB = REPO_ROOT / "services/web"
JOBS_ACL = REPO_ROOT / "compose/redis/jobs.acl"
QUEUE_DB = 1
SOMEONE = "someone@example.com"
WORKER = ["worker", "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO"]
SCHEDULER = ["beat", "-S", "api.jobs:Scheduler", "--loglevel", "INFO"]


def jobs_rules() -> list[str]:
    lines = JOBS_ACL.read_text().splitlines()
    return [word for line in lines if not line.startswith("#") for word in line.split()]


class Queue:
    """The queue's Redis database, a user of its own made from jobs.acl, and the processes run on it."""

    def __init__(self, admin: redis.Redis, port: int, settings: dict[str, str], tmp_path: Path):
        self.admin = admin
        self.user, password = f"jobs_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(32)
        admin.execute_command("ACL", "SETUSER", self.user, "reset", "on", f">{password}", *jobs_rules())
        self.url = f"redis://{self.user}:{password}@127.0.0.1:{port}/{QUEUE_DB}"
        self.settings = {
            **settings,
            "JOBS_REDIS_URL": self.url,
            "MAIL_RETRY_MAX_DELAY": "1",
            "JOBS_VISIBILITY_TIMEOUT": "5",
        }
        self.tmp_path = tmp_path
        self.processes: list[tuple[subprocess.Popen[bytes], Path]] = []
        self.client = redis.Redis(host="127.0.0.1", port=port, db=QUEUE_DB, decode_responses=True)

    def app(self, **overrides: str):
        return create_app({**self.settings, **overrides})

    def start(self, command: list[str], **overrides: str) -> subprocess.Popen[bytes]:
        log = self.tmp_path / f"{command[0]}-{len(self.processes)}.log"
        # INFO: the lines the tests read (a mail put off, a chore's run); .env.test says WARNING.
        env = {**os.environ, **self.settings, "LOG_LEVEL": "INFO", **overrides, "PYTHONPATH": str(WEB)}
        with log.open("wb") as output:
            process = subprocess.Popen(  # a process group of its own: the worker and its pool, killed as one
                [CELERY, "-A", "background", *command],
                cwd=WEB,
                env=env,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.processes.append((process, log))
        return process

    def worker_ready(self, process: subprocess.Popen[bytes]) -> bool:
        """The worker answers a ping through the queue (as its health check asks)."""
        control = self.app().extensions["celery"].control
        return bool(until(lambda: process.poll() is not None or control.ping(timeout=0.5), timeout=30)) and (
            process.poll() is None
        )

    def logs(self) -> str:
        return "\n".join(path.read_text() for _, path in self.processes)

    def counts(self) -> tuple[int, int, int]:
        """Jobs waiting, taken (running or put off), given up on."""
        with self.client.pipeline(transaction=False) as pipe:
            pipe.llen(f"{KEY_PREFIX}{QUEUE}").hlen(f"{KEY_PREFIX}unacked").llen(DEAD_LETTERS)
            return tuple(pipe.execute())

    def refusals(self) -> list[dict]:
        return [entry for entry in self.admin.acl_log() if entry.get("username") == self.user]

    def kill(self, process: subprocess.Popen[bytes]) -> None:
        """The process and its pool at once: no shutdown, nothing given back."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        # Killed: a shutdown (its 2-3 s) is not what these tests look at.
        for process, _ in self.processes:
            self.kill(process)


@pytest.fixture
def queue(redis_server, settings, tmp_path) -> Iterator[Queue]:
    port = int(redis_server.get_exposed_port(6379))
    admin = redis.Redis(host="127.0.0.1", port=port, decode_responses=True)
    admin.acl_log_reset()
    queue = Queue(admin, port, settings, tmp_path)
    queue.client.flushdb()
    try:
        yield queue
    finally:
        queue.stop()
        queue.client.flushdb()
        admin.acl_deluser(queue.user)
        admin.close()


@pytest.fixture
def migrated(queue, app):
    """The test's database migrated (servers.py's ``app`` runs `flask deploy`)."""
    return app


def test_a_mail_waits_for_a_server_that_is_down_and_then_arrives_once(queue, migrated):
    smtp_port = free_port()  # nothing listens there yet
    app = queue.app(MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_port))
    assert Api(app.test_client()).register(SOMEONE).status_code == 201
    assert queue.counts() == (1, 0, 0), "the request queued the mail and returned; no worker has it yet"

    worker = queue.start(WORKER, MAIL_SERVER="127.0.0.1", MAIL_PORT=str(smtp_port))
    assert queue.worker_ready(worker), queue.logs()
    assert until(lambda: queue.logs().count("trying again") >= 2, timeout=20), queue.logs()

    inbox = Inbox()
    from aiosmtpd.controller import Controller

    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        assert until(lambda: inbox.to(SOMEONE), timeout=20), queue.logs()
        assert until(lambda: queue.counts() == (0, 0, 0), timeout=10), queue.counts()
    finally:
        controller.stop()
    assert len(inbox.to(SOMEONE)) == 1
    assert queue.refusals() == []


class Refusing(Inbox):
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        return "550 5.1.1 no such mailbox"


def test_a_refused_mail_is_given_up_at_once_kept_without_its_body_and_listed(queue, migrated):
    with smtp_inbox(Refusing()) as (controller, _):
        overrides = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(controller.port)}
        app = queue.app(**overrides)
        worker = queue.start(WORKER, **overrides)
        assert queue.worker_ready(worker), queue.logs()
        assert Api(app.test_client()).register(SOMEONE).status_code == 201
        assert until(lambda: queue.counts() == (0, 0, 1), timeout=20), (queue.counts(), queue.logs())
    (letter,) = queue.client.lrange(DEAD_LETTERS, 0, -1)
    assert "550" in letter and SOMEONE in letter and '"tries": 1' in letter
    assert "token=" not in letter, "a dead letter keeps no link: links are secrets"
    listed = app.test_cli_runner().invoke(jobs_command)
    assert listed.exit_code == 0, listed.output
    assert "given up on: 1" in listed.output and "Verify your e-mail address" in listed.output
    assert queue.refusals() == []


class Holding(Inbox):
    """Takes a mail only once ``release`` is set; ``arrived`` says a sender reached its DATA."""

    def __init__(self):
        super().__init__()
        self.arrived, self.release = threading.Event(), threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.arrived.set()
        while not self.release.is_set():
            await asyncio.sleep(0.05)
        return await super().handle_DATA(server, session, envelope)


def test_a_worker_killed_under_a_job_leaves_it_to_the_next_worker(queue, migrated):
    """At least once: the killed worker never acknowledged the job, so after the visibility
    timeout (5 s here) the next worker runs it again."""
    holding = Holding()
    with smtp_inbox(holding) as (controller, inbox):
        overrides = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": str(controller.port)}
        app = queue.app(**overrides)
        first = queue.start(WORKER, **overrides)
        assert queue.worker_ready(first), queue.logs()
        assert Api(app.test_client()).register(SOMEONE).status_code == 201
        assert holding.arrived.wait(20), queue.logs()
        queue.kill(first)
        assert queue.counts()[1] == 1, "the job stays taken by the dead worker"
        holding.release.set()
        second = queue.start(WORKER, **overrides)
        assert queue.worker_ready(second), queue.logs()
        assert until(lambda: inbox.to(SOMEONE), timeout=30), (queue.counts(), queue.logs())
        assert until(lambda: queue.counts() == (0, 0, 0), timeout=10), queue.counts()
    assert queue.refusals() == []


def test_two_schedulers_run_a_chore_once_per_tick(queue, migrated):
    every_second = {"PRUNE_TOKENS_SCHEDULE": "* * * * * *"}
    worker = queue.start(WORKER, **every_second)
    queue.start(SCHEDULER, **every_second)
    queue.start(SCHEDULER, **every_second)
    assert queue.worker_ready(worker), queue.logs()
    assert until(lambda: queue.logs().count("already sent by another scheduler") >= 2, timeout=30), queue.logs()
    for process, _ in queue.processes[1:]:
        queue.kill(process)
    claims = len(queue.client.keys(f"{KEY_PREFIX}chore:chores.prune_tokens:2*"))

    def runs() -> int:
        return queue.logs().count("prune-tokens: removed")

    # Every claimed run is sent, and runs, once; the last claim may have been cut off by the kill
    # before its run was sent.
    assert until(lambda: runs() >= claims - 1, timeout=15), (runs(), claims, queue.logs())
    assert until(lambda: queue.counts() == (0, 0, 0), timeout=10), queue.counts()
    assert claims - 1 <= runs() <= claims, (runs(), claims)
    assert queue.refusals() == []
