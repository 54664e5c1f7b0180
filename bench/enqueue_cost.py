"""Run inside the web container by `make bench` (bench/profile.py): what queuing a mail adds to a
request. The same request twice, interleaved: asking for a password reset for an account that
exists (a link made, its mail rendered and queued in Redis) and for one that does not (the same
token-store work: the answer must not tell them apart), through the whole app in-process, on the
stack's own Postgres and Redis. The difference is the mail's cost to the request; the worker sends
it later (the job carries no server: the stack's worker has none, and drops it)."""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
import uuid

os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-metrics-"))

from api import create_app  # after the metrics directory is chosen

ROUNDS = 300
PASSWORD = "a long enough passphrase"  # a benchmark's throwaway account


def main() -> None:
    app = create_app(
        {
            # A mail is only queued when a server is named; how often may be asked is not measured here.
            "MAIL_SERVER": "mail.invalid",
            "PUBLIC_URL": "https://bench.invalid",
            "MAIL_LINKS_PER_ACCOUNT": "1000000",
            "MAIL_LINKS_PER_ADDRESS": "1000000",
        }
    )
    client = app.test_client()
    existing = f"enqueue-{uuid.uuid4().hex[:8]}@example.com"
    made = client.post("/api/auth/register", json={"email": existing, "password": PASSWORD})
    assert made.status_code == 201, made.get_data(as_text=True)
    timings: dict[str, list[float]] = {"mailed": [], "not_mailed": []}
    for index in range(ROUNDS):
        for kind, email in (("mailed", existing), ("not_mailed", f"nobody-{index}@example.com")):
            started = time.perf_counter()
            answered = client.post("/api/auth/password-reset", json={"email": email})
            timings[kind].append(time.perf_counter() - started)
            assert answered.status_code == 202, answered.get_data(as_text=True)
    mailed, not_mailed = (statistics.median(timings[kind]) * 1000 for kind in ("mailed", "not_mailed"))
    print(
        json.dumps(
            {
                "rounds": ROUNDS,
                "mailed_ms": round(mailed, 3),
                "not_mailed_ms": round(not_mailed, 3),
                "enqueue_ms": round(mailed - not_mailed, 3),
                "queue": bool(app.config["JOBS_REDIS_URL"]),
            }
        )
    )


main()
