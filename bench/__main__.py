"""`make bench`: measure the production stack's speed and cost, and write docs/benchmarks.md.

It starts its own copy of docker-compose.prod.yml (project flask-stack-bench, generated secrets,
gunicorn also published on loopback by compose/bench.yml), measures, and removes it. Absolute
figures drift on a shared machine, so every target is a ratio of two scenarios measured side by
side: A, B, B, A, ... (--rounds pairs, ten by default), reported as the median of the paired
ratios with a bootstrap interval. wrk (pinned to one core) measures throughput; oha, at a fixed
rate with latency correction, measures the tail (wrk's own percentiles suffer from coordinated
omission).

    .venv/bin/python -m bench [--rounds N] [--seconds S] [--report PATH] [--sweep] [--render]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import urllib3

from bench.loadgen import oha_binary
from bench.measures import measure
from bench.report import render
from bench.scaling import scaling
from bench.stack import BenchStack, log
from bench.sweep import render_sweep, sweep
from harness.paths import REPO_ROOT

urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)  # the stack's temporary certificate


HISTORY_KEPT = 10


def remember(path: Path, results: dict[str, Any]) -> list[dict[str, Any]]:
    """This run's ratios after the earlier runs' (the last HISTORY_KEPT): the report shows how far
    the last three runs are apart, which is how far one run can be trusted."""
    history = json.loads(path.read_text()) if path.exists() else []
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=REPO_ROOT)
    history.append(
        {
            "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "commit": commit.stdout.strip() or "unknown",
            "ratios": {key: pair["ratio_median"] for key, pair in results["pairs"].items()},
        }
    )
    history = history[-HISTORY_KEPT:]
    path.write_text(json.dumps(history, indent=2) + "\n")
    return history


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=6)
    parser.add_argument("--report", type=Path, default=REPO_ROOT / "docs" / "benchmarks.md")
    parser.add_argument("--sweep", action="store_true", help="compare gunicorn configurations instead")
    parser.add_argument("--render", action="store_true", help="only rewrite the report from its .json")
    parser.add_argument("--scaling", action="store_true", help="web replicas 1, 2, 3 on a swarm: docs/scaling.json")
    args = parser.parse_args()
    if args.render:
        args.report.write_text(render(json.loads(args.report.with_suffix(".json").read_text())))
        return
    for tool in ("wrk", "taskset"):
        if not shutil.which(tool):
            raise SystemExit(f"bench: {tool} is missing (`make bench-tools` installs it)")
    started = time.monotonic()
    if args.scaling:
        with tempfile.TemporaryDirectory(prefix="flask-stack-scaling-") as home:
            figures = scaling(Path(home), args.rounds, args.seconds)
        figures["wall_seconds"] = round(time.monotonic() - started)
        target = REPO_ROOT / "docs" / "scaling.json"
        target.write_text(json.dumps(figures, indent=2) + "\n")
        log(f"wrote {target} in {figures['wall_seconds']} s")
        return
    oha_binary()
    with tempfile.TemporaryDirectory(prefix="flask-stack-bench-") as home:
        stack = BenchStack(Path(home))
        stack.up()
        try:
            if args.sweep:
                rows = sweep(stack, args.rounds, args.seconds)
                report = args.report.with_name("benchmarks-workers.md")
                report.write_text(render_sweep(rows, args.rounds, args.seconds))
                log(f"wrote {report} in {round(time.monotonic() - started)} s")
                return
            results = measure(stack, args.rounds, args.seconds)
        finally:
            stack.down()
    results["wall_seconds"] = round(time.monotonic() - started)
    results["command"] = " ".join(["python -m bench", *sys.argv[1:]])
    args.report.parent.mkdir(exist_ok=True)
    results["history"] = remember(args.report.with_name("benchmarks-history.json"), results)
    args.report.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    args.report.write_text(render(results))
    log(f"wrote {args.report} in {results['wall_seconds']} s")


if __name__ == "__main__":
    main()
