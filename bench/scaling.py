"""`make bench-scaling`: the production stack on a single-node swarm with 1, 2 and 3 web replicas,
the same load on each, through the edge. Writes docs/scaling.json; docs/scaling.md quotes it.

Each round scales web to 1, 2, 3 in turn, waits until the edge reaches every task, and measures the
protected endpoint (`/api/users/me`: token checks in Redis, the profile from its cache) and liveness
with wrk. Figures are medians over the rounds; growth is each count's median against one replica's."""

from __future__ import annotations

import hashlib
import statistics
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from bench.loadgen import CONNECTIONS, Run, Scenario, wrk
from bench.measures import machine
from bench.stack import PASSWORD, log
from harness.polling import until
from harness.stacks import SwarmStack, output, swarm_as_found

PROJECT = "flask-stack-scaling"
REPLICA_COUNTS = (1, 2, 3)


class ScalingStack(SwarmStack):
    def __init__(self, home: Path):
        # The sign-in budget would turn the setup's logins into 429s; the load itself signs in once.
        super().__init__(PROJECT, home, settings={"WEB_REPLICAS": "1", "SIGN_IN_RATE": "1000r/s"})

    def scale(self, replicas: int) -> None:
        subprocess.run(
            ["docker", "service", "scale", "--detach", f"{PROJECT}_web={replicas}"], check=True, capture_output=True
        )
        seen: set[str] = set()

        def every_task_answers() -> bool:
            body = requests.get(self.https + "/api/healthz", verify=False, timeout=5).json()
            seen.add(body["instance"])
            current = {self.instance_of(c) for c in self.tasks("web")}
            return len(current) == replicas and current <= seen

        if not until(every_task_answers, timeout=180, interval=0.05):
            raise RuntimeError(f"web did not reach {replicas} replicas serving through the edge")

    @staticmethod
    def instance_of(container: Any) -> str:
        """healthz's instance for a task's container: the digest of its host name."""
        return hashlib.sha256(container.attrs["Config"]["Hostname"].encode()).hexdigest()[:12]

    def access_token(self) -> str:
        email = f"scaling-{uuid.uuid4().hex[:8]}@bench.example"
        credentials = {"email": email, "password": PASSWORD}
        requests.post(self.https + "/api/auth/register", json=credentials, verify=False, timeout=10)
        response = requests.post(self.https + "/api/auth/login", json=credentials, verify=False, timeout=10)
        response.raise_for_status()
        token: str = response.json()["access_token"]
        return token


def scaling(home: Path, rounds: int, seconds: float) -> dict[str, Any]:
    stack = ScalingStack(home)
    log(f"deploying the stack to a swarm as {PROJECT}")
    with swarm_as_found():
        stack.up()
        try:
            token = stack.access_token()
            scenarios = {
                "protected": Scenario(
                    "protected", stack.https + "/api/users/me", headers=(f"Authorization: Bearer {token}",)
                ),
                "liveness": Scenario("liveness", stack.https + "/api/healthz"),
            }
            runs: dict[str, dict[int, list[Run]]] = {name: {n: [] for n in REPLICA_COUNTS} for name in scenarios}
            wrk(scenarios["protected"], 2)  # warm-up
            for number in range(rounds):
                for replicas in REPLICA_COUNTS:
                    stack.scale(replicas)
                    time.sleep(2)
                    for name, scenario in scenarios.items():
                        runs[name][replicas].append(wrk(scenario, seconds))
                    log(
                        f"  round {number + 1}, {replicas} replica(s): "
                        + ", ".join(f"{name} {r[replicas][-1].rps:,.0f} req/s" for name, r in runs.items())
                    )
            workers = output(
                stack.tasks("web")[0],
                ["python", "-c", "import runpy; print(runpy.run_path('gunicorn.conf.py')['workers'])"],
            )
        finally:
            stack.down()
    return {
        "machine": machine(),
        "rounds": rounds,
        "seconds": seconds,
        "connections": CONNECTIONS,
        "workers_per_replica": int(workers.split()[-1]),
        "scenarios": {
            name: {
                str(replicas): {
                    "rps": round(statistics.median(r.rps for r in by_count[replicas])),
                    "p99_ms": round(statistics.median(r.p99_ms for r in by_count[replicas]), 1),
                    "failures": sum(r.failures for r in by_count[replicas]),
                    "growth": round(
                        statistics.median(r.rps for r in by_count[replicas])
                        / statistics.median(r.rps for r in by_count[1]),
                        2,
                    ),
                }
                for replicas in REPLICA_COUNTS
            }
            for name, by_count in runs.items()
        },
    }
