"""The production stack as the benchmark runs it: harness's ProductionStack as project
flask-stack-bench, with gunicorn also published on loopback (compose/bench.yml), so a request
through nginx can be compared with the same request straight to gunicorn."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docker
import requests

from harness.ports import free_port
from harness.stacks import ProductionStack, output

PROJECT = "flask-stack-bench"
PASSWORD = "benchmark password, long enough"


def log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


def run(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=True, **kwargs)


class BenchStack(ProductionStack):
    def __init__(self, home: Path):
        self.web_port = free_port()
        # The login flood is part of what is measured: the edge's per-address sign-in budget would
        # turn it into a flood of 429s.
        super().__init__(
            PROJECT,
            home,
            overlays=["compose/bench.yml"],
            settings={"BENCH_WEB_PORT": str(self.web_port), "SIGN_IN_RATE": "1000r/s"},
        )
        self.client = docker.from_env()

    @property
    def direct(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def up(self) -> None:
        log(f"starting the production stack as {PROJECT} (https :{self.https_port}, gunicorn :{self.web_port})")
        super().up()

    def python_in_web(self, code: str) -> str:
        return output(self.container("web"), ["python", "-c", code])

    def login(self, email: str) -> dict[str, Any]:
        session = requests.Session()
        session.post(f"{self.direct}/api/auth/register", json={"email": email, "password": PASSWORD}, timeout=10)
        response = session.post(
            f"{self.direct}/api/auth/login", json={"email": email, "password": PASSWORD}, timeout=10
        )
        response.raise_for_status()
        tokens: dict[str, Any] = response.json()
        return tokens
