"""The production stack as the benchmark runs it: harness's ProductionStack as project
flask-stack-bench with compose/bench.yml (web with its metrics off, a hello-world Flask app, the
API over plain HTTP through nginx). Every server is reached at its container address on the edge
network, straight from this host: no published port, so no docker-proxy in the path (a userland
copy of every byte, on whichever core was free, the load generator's too), which blurred the ratios."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

import docker
import requests

from harness.stacks import ProductionStack, output

PROJECT = "flask-stack-bench"
PASSWORD = "benchmark password, long enough"
# The load generator's core (wrk, oha).
LOADGEN_CPU = os.environ.get("BENCH_LOADGEN_CPU", "0")


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs)


class BenchStack(ProductionStack):
    def __init__(self, home: Path):
        # The login flood is part of what is measured: the edge's per-address sign-in budget would
        # turn it into a flood of 429s.
        super().__init__(
            PROJECT,
            home,
            overlays=["compose/bench.yml"],
            settings={"SIGN_IN_RATE": "1000r/s"},
        )
        self.client = docker.from_env()

    def address(self, service: str) -> str:
        """The service's address on the edge network, which this host reaches directly."""
        networks = self.container(service).attrs["NetworkSettings"]["Networks"]
        return str(networks[f"{PROJECT}_edge"]["IPAddress"])

    @property
    def direct(self) -> str:
        return f"http://{self.address('web')}:8000"

    @property
    def edge(self) -> str:
        """nginx over TLS (its certificate is for another name: the load generators do not check)."""
        return f"https://{self.address('nginx')}:8443"

    def up(self) -> None:
        log(f"starting the production stack as {PROJECT} (load generated from CPU {LOADGEN_CPU})")
        super().up()

    def python_in_web(self, code: str) -> str:
        return output(self.container("web"), ["python", "-c", code])

    def admin_login(self, email: str) -> dict[str, Any]:
        """An admin's tokens (a user made admin by `flask create-admin`, as an operator does)."""
        self.login(email)
        made = self.container("web").exec_run(["flask", "--app", "api", "create-admin", "--email", email])
        if made.exit_code != 0:
            raise SystemExit(f"bench: create-admin failed: {cast(bytes, made.output).decode()[-500:]}")
        return self.login(email)

    def login(self, email: str) -> dict[str, Any]:
        session = requests.Session()
        session.post(f"{self.direct}/api/auth/register", json={"email": email, "password": PASSWORD}, timeout=10)
        response = session.post(
            f"{self.direct}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
        )
        response.raise_for_status()
        tokens: dict[str, Any] = response.json()
        return tokens
