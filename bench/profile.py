"""Where the protected endpoint spends its time: py-spy on every gunicorn worker under load."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from bench.loadgen import Scenario, wrk
from bench.stack import BenchStack


def framework_cost(stack: BenchStack) -> dict[str, Any]:
    """bench/framework_cost.py in the web container: a bare request's cost in the app itself, next
    to a hello-world Flask view's, and where the difference goes."""
    code = (Path(__file__).with_name("framework_cost.py")).read_text()
    found: dict[str, Any] = json.loads(stack.python_in_web(code).strip().splitlines()[-1])
    return found


def enqueue_cost(stack: BenchStack) -> dict[str, Any]:
    """bench/enqueue_cost.py in the web container: what queuing a mail adds to a request."""
    code = (Path(__file__).with_name("enqueue_cost.py")).read_text()
    found: dict[str, Any] = json.loads(stack.python_in_web(code).strip().splitlines()[-1])
    return found


def profile_protected(stack: BenchStack, scenario: Scenario, seconds: int) -> dict[str, Any]:
    """py-spy on every gunicorn worker while the protected endpoint is under load: where the time goes."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    top = stack.client.api.top(stack.container("web").id or "", ps_args="-o pid,ppid,args")
    master = next(
        int(p[0]) for p in top["Processes"] if "gunicorn" in p[2] and not any(q[0] == p[1] for q in top["Processes"])
    )
    with tempfile.NamedTemporaryFile(suffix=".txt") as raw:
        recorder = subprocess.Popen(
            [
                py_spy,
                "record",
                "--pid",
                str(master),
                "--subprocesses",
                "--duration",
                str(seconds),
                "--rate",
                "250",
                "--format",
                "raw",
                "--output",
                raw.name,
                "--nonblocking",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wrk(scenario, seconds)
        recorder.wait(timeout=seconds + 60)
        lines = Path(raw.name).read_text().splitlines()
    return attribute(lines)


# Steps of a protected request whose total (inclusive) time the profile reports.
STEPS = {
    "the whole request in Flask (Flask.wsgi_app)": "Flask.wsgi_app (flask/app.py",
    "access check (decode, revocation and profile, in api.auth.access)": "access_token_required.<locals>.wrapper",
    "- decoding and verifying the JWT (PyJWT)": "decode_access_token (api/auth/access.py",
    "- the one Redis round trip (revocation state and profile)": "session_state (api/auth/revocation.py",
    "serializing the response (flask-smorest, marshmallow)": "ResponseMixin.response.<locals>.decorator",
    "gunicorn reading and parsing the request": "ThreadWorker.handle (gunicorn/workers/gthread.py",
}
# Leaf frames of a thread waiting: for work, for a signal, or (the access log's writer, the metrics
# server) for something to write or answer.
IDLE = (
    "_worker (concurrent/futures/thread.py",
    "EpollSelector.select",
    "PollSelector.select",
    "Arbiter.",
    "wait_for_signals",
    "AccessLogWriter.write (serving/access_log.py",
)


def attribute(lines: list[str]) -> dict[str, Any]:
    """Busy samples only (a thread waiting for work is not work): the share of time by the package
    the sampled frame was in, and the inclusive share of the request's main steps."""
    by_package: Counter[str] = Counter()
    by_step: Counter[str] = Counter()
    total = 0
    for line in lines:
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = stack.split(";")
        if any(idle in frames[-1] for idle in IDLE):
            continue
        samples = int(count)
        total += samples
        leaf = frames[-1]
        package = leaf.rsplit("(", 1)[-1].split("/", 1)[0].split(".py", 1)[0] if "(" in leaf else leaf
        by_package[package] += samples
        for step, marker in STEPS.items():
            if any(marker in frame for frame in frames):
                by_step[step] += samples
    if not total:
        return {"by_package": [], "by_step": []}
    return {
        "by_package": [(name, round(100 * n / total, 1)) for name, n in by_package.most_common(10)],
        "by_step": [(step, round(100 * by_step[step] / total, 1)) for step in STEPS],
    }
