"""The load generators: wrk for throughput (pinned to one core), oha at a fixed rate with latency
correction for the tail (wrk's own percentiles suffer from coordinated omission)."""

from __future__ import annotations

import json
import math
import os
import shutil
import statistics
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.stack import LOADGEN_CPU, log, run
from harness.paths import REPO_ROOT

WRK_SCRIPT = REPO_ROOT / "bench" / "wrk.lua"
FIXED_RATE_CAP = 2000  # requests/s
SETTLE_SECONDS = 3
# Each scenario runs this long, unmeasured, before its first round: pools fill, code paths warm.
WARMUP_SECONDS = 2
# Each measured run is the best of this many wrk runs with fresh connections (wrk's docstring).
SPLITS = 3
CONNECTIONS = 64


@dataclass(frozen=True)
class Scenario:
    name: str
    url: str
    method: str = "GET"
    headers: tuple[str, ...] = ()
    body: str = ""
    connections: int = CONNECTIONS


@dataclass
class Run:
    rps: float
    p50_ms: float
    p99_ms: float
    requests: int
    failures: int


def wrk(scenario: Scenario, seconds: float) -> Run:
    """``seconds`` of load in SPLITS runs, each with connections of its own; the throughput is the
    best run's. wrk opens its connections all at once, and straight to gunicorn one worker, the
    first to be scheduled on the core wrk leaves free, often accepts every one of them: that run
    serves at one worker's pace, half the others (seen: 3 of 8 runs, all 64 sockets in one
    worker). That measures the burst of connects, not the server (nginx opens its upstream
    connections as requests come). An average over the runs kept that luck in the figure, and
    moved ratios by 15 % from one `make bench` to the next; the best of SPLITS misses a shared-out
    run only when all of them were unlucky. Latencies and counts are over every run."""
    each = max(1.0, seconds / SPLITS)
    parts = [wrk_once(scenario, each) for _ in range(SPLITS)]
    return Run(
        max(part.rps for part in parts),
        statistics.median(part.p50_ms for part in parts),
        max(part.p99_ms for part in parts),
        sum(part.requests for part in parts),
        sum(part.failures for part in parts),
    )


def wrk_once(scenario: Scenario, seconds: float) -> Run:
    env = {
        **os.environ,
        "BENCH_METHOD": scenario.method,
        "BENCH_BODY": scenario.body,
        "BENCH_HEADERS": "\n".join(scenario.headers),
    }
    argv = [
        "taskset",
        "-c",
        LOADGEN_CPU,
        "wrk",
        "-t",
        "1",
        "-c",
        str(scenario.connections),
        "-d",
        f"{math.ceil(seconds)}s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        scenario.url,
    ]
    output = run(argv, env=env).stdout
    summary = json.loads(output.split("BENCH_JSON ", 1)[1].splitlines()[0])
    failures = sum(summary[k] for k in ("connect_errors", "read_errors", "write_errors", "status_errors", "timeouts"))
    return Run(
        summary["requests"] / (summary["duration_us"] / 1e6),
        summary["p50_us"] / 1000,
        summary["p99_us"] / 1000,
        summary["requests"],
        failures,
    )


def oha_binary() -> str:
    for candidate in (os.environ.get("OHA"), str(REPO_ROOT / "build/oha/bin/oha"), shutil.which("oha")):
        if candidate and Path(candidate).exists():
            return candidate
    raise SystemExit("bench: oha is missing (`make bench-tools` builds it)")


def oha_fixed_rate(scenario: Scenario, rate: int, seconds: int) -> dict[str, Any]:
    """Latency at a fixed request rate, measured from when each request was due (no coordinated omission)."""
    argv = [
        "taskset",
        "-c",
        LOADGEN_CPU,
        oha_binary(),
        "-z",
        f"{seconds}s",
        "-c",
        str(scenario.connections),
        "-q",
        str(rate),
        "--latency-correction",
        "--wait-ongoing-requests-after-deadline",
        "--no-tui",
        "--insecure",
        "--output-format",
        "json",
        "-m",
        scenario.method,
    ]
    for header in scenario.headers:
        argv += ["-H", header]
    if scenario.body:
        argv += ["-d", scenario.body]
    report = json.loads(run([*argv, scenario.url]).stdout)
    statuses = {int(code): count for code, count in report.get("statusCodeDistribution", {}).items()}
    return {
        "rate": rate,
        "p50_ms": report["latencyPercentiles"]["p50"] * 1000,
        "p99_ms": report["latencyPercentiles"]["p99"] * 1000,
        "requests": sum(statuses.values()),
        "non_2xx": sum(count for code, count in statuses.items() if not 200 <= code < 300)
        + sum(report.get("errorDistribution", {}).values()),
    }


@dataclass(frozen=True)
class Step:
    key: str
    scenario: Scenario
    during: Scenario | None = None  # a second load running meanwhile (the login flood)


def rounds_of(steps: list[Step], rounds: int, seconds: float) -> tuple[dict[str, list[Run]], list[Run]]:
    """Every step in turn, ``rounds`` times: scenarios compared with each other were measured side by
    side, so drift on a shared machine hits both. Every other round runs the steps in reverse order,
    so a machine that warms up or slows down through a round favours neither side of a pair.
    Returns the runs by key, and the background runs."""
    runs: dict[str, list[Run]] = {step.key: [] for step in steps}
    background_runs: list[Run] = []
    for step in steps:
        wrk(step.scenario, WARMUP_SECONDS)
    for number in range(rounds):
        for step in steps if number % 2 == 0 else reversed(steps):
            if step.during is None:
                runs[step.key].append(wrk(step.scenario, seconds))
                continue
            with Background(step.during, seconds) as background:
                runs[step.key].append(wrk(step.scenario, seconds))
            if background.result is None:
                raise RuntimeError(f"the background load during {step.key} did not finish")
            background_runs.append(background.result)
            time.sleep(SETTLE_SECONDS)  # the flood's last requests finish before the next measurement
        log(f"  round {number + 1}: " + ", ".join(f"{k} {v[-1].rps:,.0f}" for k, v in runs.items()) + " req/s")
    return runs, background_runs


class Background:
    """A second wrk running for the length of a `with` block (a login flood)."""

    def __init__(self, scenario: Scenario, seconds: float) -> None:
        self.scenario = scenario
        self.seconds = seconds
        self.result: Run | None = None

    def __enter__(self) -> Background:
        self.thread = threading.Thread(target=self._run)
        self.thread.start()
        time.sleep(0.5)  # let the flood build up before the measured run starts
        return self

    def _run(self) -> None:
        self.result = wrk(self.scenario, self.seconds + 1)

    def __exit__(self, *_exc: object) -> None:
        self.thread.join()


def wrk_version() -> str:
    result = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    return (result.stdout + result.stderr).splitlines()[0].split(" Copyright")[0]
