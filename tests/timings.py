"""What the tests cost. Every pytest process writes its tiers' start and end and every test's time
(setup, call and teardown) to test-artifacts/timings/<pid>.json; `python tests/timings.py` merges
them into the table `make test` and `make check` end with: each tier's wall time (from its first
test's start to its last test's end, whichever process ran them), then the slowest tests. All of it
goes to test-artifacts/timings.json too.

Loaded as a plugin by tests/conftest.py; run as a script it merges and prints (`--markdown`: the
tables docs/testing.md shows, from the last run's test-artifacts/timings.json)."""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
PER_PROCESS = ARTIFACTS / "timings"
MERGED = ARTIFACTS / "timings.json"
SLOWEST = 10

_spans: dict[str, list[float]] = {}
_tests: dict[str, float] = defaultdict(float)


def tier_of(nodeid: str) -> str:
    parts = nodeid.split("/")
    return parts[1] if len(parts) > 2 and parts[0] == "tests" else "other"


def pytest_runtest_logstart(nodeid, location):
    now = time.time()
    _spans.setdefault(tier_of(nodeid), [now, now])


def pytest_runtest_logreport(report):
    _tests[report.nodeid] += report.duration
    _spans[tier_of(report.nodeid)][1] = time.time()


def pytest_sessionfinish(session):
    if not _tests:
        return
    PER_PROCESS.mkdir(parents=True, exist_ok=True)
    recorded = {"tiers": _spans, "tests": {nodeid: round(seconds, 2) for nodeid, seconds in _tests.items()}}
    (PER_PROCESS / f"{os.getpid()}.json").write_text(json.dumps(recorded) + "\n")


def merged() -> dict:
    spans: dict[str, list[float]] = {}
    tests: dict[str, float] = {}
    for path in sorted(PER_PROCESS.glob("*.json")):
        recorded = json.loads(path.read_text())
        for tier, (start, end) in recorded["tiers"].items():
            known = spans.setdefault(tier, [start, end])
            known[0], known[1] = min(known[0], start), max(known[1], end)
        tests.update(recorded["tests"])
    tiers = {tier: round(end - start, 1) for tier, (start, end) in spans.items()}
    overall = round(max(end for _, end in spans.values()) - min(start for start, _ in spans.values()), 1)
    return {"tiers": tiers, "wall": overall, "tests": dict(sorted(tests.items(), key=lambda item: -item[1]))}


def table(result: dict) -> str:
    lines = ["tier          wall (s)"]
    lines += [f"{tier:<13} {seconds:>8.1f}" for tier, seconds in result["tiers"].items()]
    lines.append(f"{'all (wall)':<13} {result['wall']:>8.1f}   (tiers overlap when they run side by side)")
    lines += ["", f"the {SLOWEST} slowest tests (setup + call + teardown, s)"]
    lines += [f"{seconds:>8.1f}  {nodeid}" for nodeid, seconds in list(result["tests"].items())[:SLOWEST]]
    return "\n".join(lines)


def markdown(result: dict, modules: int = 12) -> str:
    """Each tier's wall time, and the modules that cost the most, as docs/testing.md shows them."""
    lines = ["| tier | wall (s) |", "| --- | --- |"]
    lines += [f"| {tier} | {seconds:,.1f} |" for tier, seconds in sorted(result["tiers"].items())]
    cost: dict[str, float] = defaultdict(float)
    for nodeid, seconds in result["tests"].items():
        cost[nodeid.split("::")[0]] += seconds
    top = sorted(cost.items(), key=lambda item: -item[1])[:modules]
    lines += ["", "| module | s | module | s |", "| --- | --- | --- | --- |"]
    cells = [f"`{module}` | {seconds:.0f}" for module, seconds in top] + (["|"] if len(top) % 2 else [])
    lines += [f"| {left} | {right} |" for left, right in zip(cells[::2], cells[1::2], strict=True)]
    return "\n".join(lines)


if __name__ == "__main__":
    if sys.argv[1:] == ["--markdown"]:
        print(markdown(json.loads(MERGED.read_text())))
        sys.exit()
    if not list(PER_PROCESS.glob("*.json")):
        sys.exit(f"nothing in {PER_PROCESS}: run the tests first")
    result = merged()
    MERGED.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
