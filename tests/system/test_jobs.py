"""Background jobs on the production stack (its Redis ACL users, read-only containers, secrets),
through the edge: what a client was promised by a 201 or a 202 is mailed although the worker, Redis
or web went away meanwhile; a registration that lost its race mails nothing. (The queue's own
faults, one process at a time: tests/integration/test_jobs.py.)"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from harness.polling import until

VERIFY = "[flask-stack] Verify your e-mail address"
RESET = "[flask-stack] Reset your password"


def subjects(production, email: str) -> list[str]:
    return [mail["subject"] for mail in production.mails(email)]


def queue_empty(production) -> bool:
    listed = production.compose("exec", "-T", "worker", "flask", "jobs").stdout
    return "queued: 0\n" in listed and "taken (running or waiting to be tried again): 0\n" in listed


def settled(production, *services: str) -> None:
    """The services up and healthy again, as the next test expects the shared stack."""
    started = production.compose("up", "--detach", "--no-deps", "--wait", *services)
    assert started.returncode == 0, started.stderr[-2000:]


def test_mail_queued_while_the_worker_was_down_survives_a_redis_restart(production):
    """Three registrations answered 201 while no worker runs; Redis restarts (its append-only file
    holds the queue); the worker comes back and each account gets its one mail."""
    emails = [f"queued-{uuid.uuid4().hex[:8]}@example.com" for _ in range(3)]
    stopped = production.compose("stop", "worker")
    assert stopped.returncode == 0, stopped.stderr[-2000:]
    try:
        api = production.api()
        assert [api.patiently(lambda e=email: api.register(e)).status_code for email in emails] == [201, 201, 201]
        assert not any(production.mails(email) for email in emails), "mailed with no worker running"
        restarted = production.compose("restart", "redis")
        assert restarted.returncode == 0, restarted.stderr[-2000:]
    finally:
        settled(production, "redis", "worker")
    assert until(lambda: all(production.mails(email) for email in emails), timeout=60), production.logs("worker")
    assert [subjects(production, email) for email in emails] == [[VERIFY]] * 3


def test_web_killed_right_after_answering_a_reset_request_still_mails_the_link(production):
    email = f"killed-{uuid.uuid4().hex[:8]}@example.com"
    api = production.api()
    assert api.patiently(lambda: api.register(email)).status_code == 201
    assert until(lambda: production.mails(email), timeout=30)
    try:
        assert api.post("/api/auth/password-reset", json={"email": email}).status_code == 202
        production.container("web").kill()
    finally:
        settled(production, "web")
    assert until(lambda: RESET in subjects(production, email), timeout=30), production.logs("worker")
    assert subjects(production, email) == [VERIFY, RESET]


def test_of_racing_registrations_only_the_one_committed_is_mailed(production):
    email = f"race-{uuid.uuid4().hex[:8]}@example.com"
    api = production.api()
    # Four at once: within the edge's sign-in burst (5); a 429 is sent again (patiently).
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(lambda _: api.patiently(lambda: api.register(email)).status_code, range(4)))
    assert statuses == [201, 409, 409, 409]
    assert until(lambda: production.mails(email), timeout=30)
    # The worker has nothing more for this address: anything mailed for a rolled-back try would be here.
    assert until(lambda: queue_empty(production), timeout=30)
    assert subjects(production, email) == [VERIFY]
