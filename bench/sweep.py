"""`make bench-sweep`: gunicorn worker classes and counts side by side (docs/benchmarks-workers.md)."""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.loadgen import CONNECTIONS, Run, Scenario, wrk
from bench.measures import machine, memory
from bench.stack import LOADGEN_CPU, BenchStack, log

# gunicorn configurations the sweep compares: (worker class, workers, threads).
SWEEP = [("sync", 5, 1), ("gthread", 2, 4), ("gthread", 3, 4), ("gthread", 5, 4), ("gthread", 5, 8), ("gthread", 8, 2)]


def sweep(stack: BenchStack, rounds: int, seconds: float) -> list[dict[str, Any]]:
    """Each gunicorn configuration in turn (web recreated with it), the same scenarios each time."""
    rows = []
    original = stack.env_file.read_text()
    try:
        for worker_class, workers, threads in SWEEP:
            stack.env_file.write_text(
                original + f"GUNICORN_WORKER_CLASS={worker_class}\nGUNICORN_WORKERS={workers}\n"
                f"GUNICORN_THREADS={threads}\n"
            )
            result = stack.compose("up", "-d", "--force-recreate", "--no-deps", "--wait", "web")
            if result.returncode != 0:
                raise SystemExit(f"bench: web did not start with {worker_class} {workers}x{threads}: {result.stderr}")
            token = stack.login(f"sweep-{time.time_ns()}@bench.example")["access_token"]
            bare = Scenario("bare", f"{stack.https}/api/healthz")
            direct = Scenario("direct", f"{stack.direct}/api/healthz")
            protected = Scenario(
                "protected", f"{stack.https}/api/users/me", headers=(f"Authorization: Bearer {token}",)
            )
            wrk(bare, 2)
            idle = memory(stack)
            runs: dict[str, list[Run]] = {name: [] for name in ("bare", "direct", "protected")}
            for _ in range(rounds):
                for name, scenario in (("bare", bare), ("direct", direct), ("protected", protected)):
                    runs[name].append(wrk(scenario, seconds))
            row = {"config": f"{worker_class} {workers}×{threads}", "memory_mib": idle["container_mib"]}
            for name, measured in runs.items():
                row[f"{name}_rps"] = round(statistics.median(r.rps for r in measured))
                row[f"{name}_p99_ms"] = round(statistics.median(r.p99_ms for r in measured), 1)
                row[f"{name}_failures"] = sum(r.failures for r in measured)
            log(f"  {row}")
            rows.append(row)
    finally:
        stack.env_file.write_text(original)
    return rows


def render_sweep(rows: list[dict[str, Any]], rounds: int, seconds: float) -> str:
    lines = [
        "# gunicorn worker sweep",
        "",
        f"Written by `make bench-sweep` on {machine()['cores']} cores: the production stack with web recreated for each"
        f" configuration; medians of {rounds} runs of {seconds:g} s at {CONNECTIONS} connections (wrk pinned to CPU"
        f" {LOADGEN_CPU}). The defaults in `services/web/gunicorn.conf.py` come from this table.",
        "",
        "| worker class, workers × threads | bare via nginx req/s | bare on gunicorn req/s | protected via nginx req/s"
        " | protected ÷ bare | nginx ÷ direct | p99 protected ms (wrk) | web idle MiB | failed |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(
            f"| {row['config']} | {row['bare_rps']:,} | {row['direct_rps']:,} | {row['protected_rps']:,} |"
            f" {row['protected_rps'] / row['bare_rps']:.2f} | {row['bare_rps'] / row['direct_rps']:.2f} |"
            f" {row['protected_p99_ms']} | {row['memory_mib']} |"
            f" {row['bare_failures'] + row['direct_failures'] + row['protected_failures']} |"
        )
    return "\n".join([*lines, ""])
