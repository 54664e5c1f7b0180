"""`make test`: every tier, in lanes that run side by side (`make check`: lint, the unit and the
integration tier, so, with --check). A lane is a list of runs (pytest, or make), one after
another; a phase is lanes that run at once; phases run in turn. Each lane runs on stacks of its
own (their own compose projects and ports), so what one lane does to its stacks never reaches
another. Each lane's output goes to test-artifacts/lanes/<lane>.log; a line says when each run
ends; the failures' summaries and the timing table (tests/timings.py) come at the end.

Which run a system module goes to: those that bring up stacks of their own (a deploy checkout, a
host, a swarm: minutes each) are listed below, to balance the lanes; every other system module
shares the dev and production stacks (SHARED_STACKS). Swarm's modules share one run: they take
this engine's swarm in turn.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
LOGS = REPO_ROOT / "test-artifacts" / "lanes"
SYSTEM = "tests/system"
OWN_STACKS = {
    "deploys": ["test_push_to_deploy.py", "test_install_host.py"],
    "backups and certificates": ["test_backups.py", "test_certificates.py"],
    "swarm": ["test_swarm.py", "test_swarm_push_to_deploy.py", "test_swarm_two_nodes.py"],
}
SHARED_STACKS = ["pytest", SYSTEM, *(f"--ignore={SYSTEM}/{m}" for modules in OWN_STACKS.values() for m in modules)]


def own_stacks(group: str) -> list[str]:
    return ["pytest", *(f"{SYSTEM}/{module}" for module in OWN_STACKS[group])]


# Chromium drops its requests when the host's network interfaces change (net::ERR_NETWORK_CHANGED),
# and every container another lane starts or builds adds or removes one: the browser tier runs
# first, with only the unit tier (no Docker) beside it. Then two lanes: this machine has two cores,
# and with three or four, Docker 20.10's embedded DNS failed to resolve services' names under the
# load ("could not translate host name db"), and stacks' health checks and the load tests' clients
# starved (a load average of 12): migrations, backups and deploys failed that pass alone.
TEST: list[dict[str, list[list[str]]]] = [
    {"browser": [["pytest", "tests/browser"]], "unit": [["pytest", "tests/unit"]]},
    {
        "integration, fuzz, Swarm, backups and certificates": [
            ["pytest", "tests/integration"],
            ["pytest", "tests/fuzz"],
            own_stacks("swarm"),
            own_stacks("backups and certificates"),
        ],
        "shared stacks, then deploys": [SHARED_STACKS, own_stacks("deploys")],
    },
]


CHECK: list[dict[str, list[list[str]]]] = [
    {
        "lint": [["make", "--no-print-directory", "lint"]],
        "unit": [["pytest", "tests/unit"]],
        "integration": [["pytest", "tests/integration"]],
    }
]


def say(text: str) -> None:
    print(f"[lanes {time.strftime('%H:%M:%S')}] {text}", flush=True)


def log_of(lane: str) -> Path:
    return LOGS / ("-".join("".join(c for c in lane.lower() if c.isalnum() or c == " ").split()) + ".log")


def run_lane(name: str, runs: list[list[str]], results: dict[str, int]) -> None:
    with log_of(name).open("w") as log:
        for argv in runs:
            started = time.monotonic()
            command = [sys.executable, "-m", *argv] if argv[0] == "pytest" else argv
            code = subprocess.run(command, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT).returncode
            outcome = "passed" if code == 0 else f"FAILED (exit {code})"
            say(f"{name}: {' '.join(argv[:2])} {outcome} in {time.monotonic() - started:.0f} s")
            # The lane goes on: one run's failure says nothing of the next's.
            results[name] = results.get(name) or code


def run_phase(lanes: dict[str, list[list[str]]], results: dict[str, int]) -> None:
    threads = [threading.Thread(target=run_lane, args=(name, runs, results)) for name, runs in lanes.items()]
    say(f"{len(threads)} lanes side by side: {'; '.join(lanes)}")
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main(phases: list[dict[str, list[list[str]]]]) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    # Cleanup of leftovers spares what the other lanes start from now on (tests/docker_env.py).
    os.environ["FLASK_STACK_TESTS_STARTED"] = str(time.time())
    results: dict[str, int] = {}
    say(f"logs in {LOGS.relative_to(REPO_ROOT)}/")
    for lanes in phases:
        run_phase(lanes, results)
    failed = [name for name, code in results.items() if code != 0]
    for name in failed:
        lines = log_of(name).read_text().splitlines()
        summaries = [i for i, line in enumerate(lines) if "short test summary info" in line] or [len(lines) - 60]
        print(f"\n==== {name}: what failed ====")
        for start in summaries:
            print(*lines[max(0, start) : start + 40], sep="\n")
    say("every lane passed" if not failed else f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(CHECK if sys.argv[1:] == ["--check"] else TEST))
