"""The whole dev stack from the repository (docker-compose.yml), brought up with testcontainers'
Compose v2 support under its own project name and ports, and reached through nginx over TLS.

The system and browser tiers import these fixtures in their conftest; a tier can add compose files
(``compose_files``) to adjust the stack for what it tests."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from contract import Api
from docker_env import base_image, docker_client_or_skip, ensure_image, missing
from harness.paths import REPO_ROOT
from harness.ports import free_port
from harness.stacks import EdgeAddresses, remove_project

PROJECT = "flask-stack-test"


def compose_v2_or_skip() -> None:
    result = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if result.returncode != 0:
        missing("Compose v2 (`docker compose`) is missing; `make compose-plugin` installs it")


@dataclass
class Stack(EdgeAddresses):
    compose: object
    http_port: int
    https_port: int
    ca_file: Path
    mail_port: int = 0
    project: str = PROJECT

    def session(self) -> requests.Session:
        session = requests.Session()
        session.verify = str(self.ca_file)
        # Otherwise REQUESTS_CA_BUNDLE from the environment would override the CA set here.
        session.trust_env = False
        return session

    def api(self) -> Api:
        return Api(self.session(), self.https)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.https + path, verify=str(self.ca_file), timeout=10, **kwargs)

    def mails(self, to: str) -> list[dict]:
        """What the development mail sink holds for ``to``, oldest first."""
        response = requests.get(f"http://127.0.0.1:{self.mail_port}/messages", timeout=10)
        response.raise_for_status()
        return [message for message in response.json() if to in message["to"]]

    def compose_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`docker compose` with this stack's files (project name and ports come from the environment)."""
        return subprocess.run(
            [*self.compose.compose_command_property, *args], cwd=REPO_ROOT, capture_output=True, text=True, check=check
        )

    def create_admin(self) -> str:
        """A new account made an admin by the operator's command; its e-mail (password: PASSWORD)."""
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        registered = self.api().register(email)
        assert registered.status_code == 201, registered.text
        self.compose_run("exec", "-T", "web", "flask", "--app", "api", "create-admin", "--email", email)
        return email

    def container(self, service: str):
        """The Docker SDK's view of the service's container (state, health, start time)."""
        import docker

        return docker.from_env().containers.get(self.compose.get_container(service_name=service).ID)

    def wait_healthy(self, service: str, timeout: float = 90) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            container = self.container(service)
            container.reload()
            if container.attrs["State"].get("Health", {}).get("Status") == "healthy":
                return
            time.sleep(0.5)
        raise AssertionError(f"{service} did not become healthy in {timeout}s")


@pytest.fixture(scope="session")
def compose_ready():
    """A Docker engine, Compose v2 and the base images, or a skip (a failure under REQUIRE_DOCKER=1)."""
    client = docker_client_or_skip()
    compose_v2_or_skip()
    for name in ("POSTGRES_IMAGE", "REDIS_IMAGE", "PYTHON_IMAGE", "NGINX_IMAGE", "DEBIAN_IMAGE"):
        ensure_image(client, base_image(name))


@pytest.fixture(scope="session")
def compose_files() -> list[str]:
    return ["docker-compose.yml"]


@pytest.fixture(scope="session")
def stack_settings() -> dict[str, str]:
    """Variables the compose files read (a tier may change one, as the fuzz tier does)."""
    return {}


@pytest.fixture(scope="session")
def stack(compose_ready, compose_files, stack_settings, tmp_path_factory):
    from testcontainers.compose import DockerCompose

    http_port, https_port, mail_port = free_port(), free_port(), free_port()
    # The compose CLI that testcontainers runs inherits these.
    os.environ.update(
        COMPOSE_PROJECT_NAME=PROJECT,
        HTTP_PORT=str(http_port),
        HTTPS_PORT=str(https_port),
        MAIL_UI_PORT=str(mail_port),
        **stack_settings,
    )
    remove_project(PROJECT)
    compose = DockerCompose(REPO_ROOT, compose_file_name=compose_files, build=True, wait=True)
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    stack = Stack(compose, http_port, https_port, ca_file, mail_port)
    try:
        compose.start()
    except subprocess.CalledProcessError as error:
        logs = stack.compose_run("logs", "--tail=50", check=False).stdout
        raise AssertionError(f"the stack did not come up: {error.stderr.decode()[-3000:]}\n{logs[-5000:]}") from None
    ca_text, _, _ = compose.exec_in_container(["cat", "/etc/nginx/certs/ca.pem"], service_name="nginx")
    ca_file.write_text(ca_text)
    yield stack
    remove_project(PROJECT)
