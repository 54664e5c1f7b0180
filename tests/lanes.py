"""`make test`: lint and every tier, in three lanes side by side (or in one: `make test LANES=1`);
`make check`: lint, the unit and the integration tier side by side (--check). A lane is a list of
runs (pytest, or make), one after another; a phase is lanes that run at once; phases run in turn.
Each lane runs on stacks of its own (their own compose projects and ports), so what one lane does
to its stacks never reaches another. Each lane's output goes to test-artifacts/lanes/<lane>.log; a
line says when each run ends; the failures' summaries and the timing table (tests/timings.py) come
at the end.

Which run a system module goes to: those that bring up stacks of their own (a deploy checkout, a
host, a swarm: minutes each) are listed below, to balance the lanes; every other system module
shares the dev and production stacks (SHARED_STACKS). Swarm's modules share one run: they take
this engine's swarm in turn.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
# Run as a script (tests/ first on the path): the harness package is at the repository's root.
sys.path.insert(1, str(REPO_ROOT))
LOGS = REPO_ROOT / "test-artifacts" / "lanes"
SYSTEM = "tests/system"
OWN_STACKS = {
    "push-to-deploy": ["test_push_to_deploy.py"],
    # Releases on this machine and a host in one container: no stack, and no container comes or
    # goes while they run (they go beside Swarm, below).
    "host releases": ["test_host_releases.py"],
    "host install": ["test_install_host.py"],
    "backups": ["test_backups.py"],
    "certificates": ["test_certificates.py"],
    "swarm": ["test_swarm.py", "test_swarm_push_to_deploy.py", "test_swarm_two_nodes.py"],
}
SHARED_STACKS = ["pytest", SYSTEM, *(f"--ignore={SYSTEM}/{m}" for modules in OWN_STACKS.values() for m in modules)]


def own_stacks(group: str) -> list[str]:
    return ["pytest", *(f"{SYSTEM}/{module}" for module in OWN_STACKS[group])]


LINT = ["make", "lint", "--no-print-directory"]

# Lanes side by side: what `make test` runs. Chromium drops its requests when the host's network
# interfaces change (net::ERR_NETWORK_CHANGED), and every container another lane starts or builds
# adds or removes one: the browser tier runs first, beside lint and the unit tier (no Docker). Then
# three lanes of about equal length: two left a quarter of the two cores idle (a stack's start, a
# deploy's health check and a broken version's start period are waits). Their order keeps within
# Docker's default address pools, 29 bridge networks besides the engine's own two (a new one fails
# with "could not find an available, non-overlapping IPv4 address pool"): the shared stacks hold
# 13 throughout, the backups' two production stacks 12, push-to-deploy's 7, certificates' 6, the
# fuzz tier's 4, the integration tier's none. The backups run first, beside the integration tier
# (29 at most, should the fuzz tier start before they end), and are over long before the
# certificates start (about 120 s against 210). Swarm runs last, beside
# the hosts' modules only: beside stacks coming and going, Docker 20.10's swarm now and then failed
# a task ("network sandbox does not exist for container") or was slow to replace one; the hosts'
# modules start a container or two and keep them, and their CPU (pip, apt) fills what Swarm's
# waits leave idle. What running side by side took (docs/testing.md): one swarm for the whole run
# (one_swarm_for_the_run), a load lock (tests/conftest.py), the deployer and `make kill` telling a
# container compose made from one run of an image compose built.
THREE_LANES: list[dict[str, list[list[str]]]] = [
    {"browser": [["pytest", "tests/browser"]], "unit": [["pytest", "tests/unit"]], "lint": [LINT]},
    {
        "shared stacks": [SHARED_STACKS],
        "backups, push-to-deploy": [own_stacks("backups"), own_stacks("push-to-deploy")],
        "integration, fuzz, certificates": [
            ["pytest", "tests/integration"],
            ["pytest", "tests/fuzz"],
            own_stacks("certificates"),
        ],
    },
    {
        "swarm": [own_stacks("swarm")],
        "host releases": [own_stacks("host releases")],
        "host install": [own_stacks("host install")],
    },
]
# One lane of Docker tiers (`make test LANES=1`: the quietest machine, for figures or a failure
# that may come of the load); lint and the unit tier beside the integration tier, as in `make check`.
ONE_LANE: list[dict[str, list[list[str]]]] = [
    {"lint": [LINT], "unit": [["pytest", "tests/unit"]], "integration": [["pytest", "tests/integration"]]},
    {
        "every other tier": [
            *(["pytest", f"tests/{tier}"] for tier in ("browser", "fuzz")),
            SHARED_STACKS,
            *(own_stacks(group) for group in OWN_STACKS),
        ]
    },
]
TEST = {"1": ONE_LANE, "3": THREE_LANES}


# The integration tier is the check's longest lane: its modules that run the app's own processes
# (the job worker and scheduler, the Procfile's; servers of their own) run after the unit tier
# instead, beside the rest.
PROCESS_MODULES = ["tests/integration/test_jobs.py", "tests/integration/test_procfile.py"]
CHECK: list[dict[str, list[list[str]]]] = [
    {
        "lint": [LINT],
        "unit, processes": [["pytest", "tests/unit"], ["pytest", *PROCESS_MODULES]],
        "integration": [["pytest", "tests/integration", *(f"--ignore={module}" for module in PROCESS_MODULES)]],
    }
]


@contextlib.contextmanager
def one_swarm_for_the_run() -> Iterator[None]:
    """This engine as a swarm from before the first stack starts until after the last is gone.
    Docker 20.10 forgets the service names on every compose network that a `swarm leave` finds
    (moby/moby#45144: "could not translate host name db"), so a Swarm module that made a swarm and
    left it would break every compose stack up at the time (in a lane, or a contributor's own run
    beside it), and each module would pay for its own init and leave. They find this one and
    keep it; it is advertised where the two-node module's second engine reaches it, and left at
    the end if the run made it (harness.stacks.swarm_as_found)."""
    import docker

    from harness.stacks import bridge_gateway, swarm_as_found

    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException:
        yield  # no engine: the Docker tiers skip, or fail under REQUIRE_DOCKER=1, on their own
        return
    with swarm_as_found():
        made = subprocess.run(
            [str(REPO_ROOT / "compose/scripts/swarm.sh"), "init"],
            cwd=REPO_ROOT,
            env={**os.environ, "SWARM_ADVERTISE_ADDR": bridge_gateway(client)},
            capture_output=True,
            text=True,
        )
        if made.returncode != 0:
            say(f"no swarm for the run: {made.stdout[-500:]}{made.stderr[-1000:]}")
        yield


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
    say(f"{'lanes side by side' if len(threads) > 1 else 'one lane'}: {'; '.join(lanes)}")
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main(phases: list[dict[str, list[list[str]]]], swarm: bool) -> int:
    LOGS.mkdir(parents=True, exist_ok=True)
    # Cleanup of leftovers spares what the other lanes start from now on (tests/docker_env.py).
    os.environ["FLASK_STACK_TESTS_STARTED"] = str(time.time())
    results: dict[str, int] = {}
    say(f"logs in {LOGS.relative_to(REPO_ROOT)}/")
    with one_swarm_for_the_run() if swarm else contextlib.nullcontext():
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
    # lanes.py --check | lanes.py [LANES]
    if sys.argv[1:] == ["--check"]:
        sys.exit(main(CHECK, swarm=False))
    sys.exit(main(TEST[(sys.argv[1:] or ["3"])[0]], swarm=True))
