"""Run inside the web container by `make bench` (bench/profile.py): what one bare request costs in
the app itself, next to a hello-world Flask view answering the same, without gunicorn or a
network, and where the difference goes (cProfile, self time by where the code lives). CPU time in
one process, so it repeats far better than throughput does; it explains the bare ÷ hello ratio."""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

# As under gunicorn: the metrics in their multiprocess files (set before prometheus_client is imported).
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-metrics-"))

from flask import Flask  # after the metrics directory is chosen

from api import create_app

CALLS = 2000
WSGI = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def hello_app() -> Flask:
    hello = Flask("hello")

    @hello.get("/api/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok", "version": "0", "revision": "unknown", "instance": "0"}

    return hello


def environ() -> dict[str, Any]:
    return {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/api/healthz",
        "QUERY_STRING": "",
        "SERVER_NAME": "web",
        "SERVER_PORT": "8000",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "wsgi.errors": io.StringIO(),
        "wsgi.version": (1, 0),
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }


def per_call_us(app: WSGI, calls: int = CALLS) -> float:
    def start_response(*_args: object) -> None:
        return None

    started = time.perf_counter()
    for _ in range(calls):
        body = app(environ(), start_response)
        b"".join(body)
        getattr(body, "close", lambda: None)()
    return (time.perf_counter() - started) / calls * 1e6


def owner(filename: str) -> str:
    for part in ("/api/", "flask_smorest", "marshmallow", "prometheus_client", "werkzeug", "flask/", "blinker"):
        if part in filename:
            return part.strip("/")
    return "other (Python, json, …)"


def self_time_us(app: WSGI) -> Counter[str]:
    """Self time per call, in µs, by where the code lives (profiled: slower than unprofiled, but
    in proportion)."""
    profile = cProfile.Profile()
    profile.enable()
    per_call_us(app)
    profile.disable()
    by_owner: Counter[str] = Counter()
    for (filename, _line, _name), row in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        by_owner[owner(filename)] += row[2] / CALLS * 1e6
    return by_owner


def main() -> None:
    app, hello = create_app(), hello_app()
    for wsgi in (app, hello):
        per_call_us(wsgi, 300)  # warm
    # The best of three, interleaved: the least disturbed by whatever else the machine does.
    bare = min(per_call_us(app) for _ in range(3))
    ceiling = min(per_call_us(hello) for _ in range(3))
    ours, theirs = self_time_us(app), self_time_us(hello)
    extra = {name: ours[name] - theirs[name] for name in ours}
    print(
        json.dumps(
            {
                "bare_us": round(bare, 1),
                "hello_us": round(ceiling, 1),
                "extra_us_by_owner": sorted(
                    ((name, round(us, 1)) for name, us in extra.items() if us >= 0.5), key=lambda row: -row[1]
                ),
            }
        )
    )


if __name__ == "__main__":
    main()
