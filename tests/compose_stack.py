"""The stacks the Docker tiers share, one per session, reached through nginx over TLS:

- ``stack``: the dev stack from the repository (docker-compose.yml), brought up with testcontainers'
  Compose v2 support under its own project name and ports; a tier can add compose files
  (``compose_files``) to adjust it for what it tests;
- ``production``: docker-compose.prod.yml with its secrets, ACL'd Redis, non-superuser database
  role and read-only containers, the hook and a mail sink (compose/test-production.yml);
- ``any_stack``: each of the two in turn, for what must hold in development and production alike
  (one test function, not two copies)."""

from __future__ import annotations

import os
import re
import shutil
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
from harness.stacks import EdgeAddresses, ProductionStack, remove_project

PROJECT = "flask-stack-test"
PRODUCTION_PROJECT = "flask-stack-prodtest"
# Every production stack the tests start (compose, Swarm, a deploy checkout) has production's
# waits shortened by this overlay, and nothing else changed.
QUICK_WAITS = "compose/test-timing.yml"
# And on Swarm, how long an update watches each new task (compose/swarm.yml): a setting, since the
# swarm overlay comes after every other file.
QUICK_SWARM = {"WEB_UPDATE_MONITOR": "5s"}
# And Prometheus (`make monitoring`) scraping and looking for targets every second, not every 15 s,
# with production's configuration otherwise: so a test sees a service's metrics within seconds.
PROMETHEUS_CONFIG = REPO_ROOT / "compose/monitoring/prometheus.yml"
QUICK_SCRAPES = re.compile(r"\b(scrape_interval|evaluation_interval|refresh_interval): 15s\b")


def quick_prometheus_config(home: Path) -> Path:
    """A copy of production's Prometheus configuration in ``home`` with every interval 1 s."""
    quick = home / "prometheus.yml"
    quick.write_text(QUICK_SCRAPES.sub(r"\1: 1s", PROMETHEUS_CONFIG.read_text()))
    return quick


def compose_v2_or_skip() -> None:
    result = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if result.returncode != 0:
        missing("Compose v2 (`docker compose`) is missing; `make compose-plugin` installs it")


class Reachable:
    """How a test reaches a stack: its edge over TLS (trusting the stack's own CA), its mail sink,
    and the operator's commands in its web container."""

    https: str
    ca_file: Path
    mail_port: int

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

    def create_admin(self) -> str:
        """A new account made an admin by the operator's command; its e-mail (password: PASSWORD)."""
        email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
        registered = self.api().register(email)
        assert registered.status_code == 201, registered.text
        made = self.exec_web("flask", "--app", "api", "create-admin", "--email", email)
        assert made.returncode == 0, made.stdout + made.stderr
        return email

    def exec_web(self, *argv: str) -> subprocess.CompletedProcess:
        raise NotImplementedError

    def logs(self, service: str) -> str:
        raise NotImplementedError


@dataclass
class Stack(Reachable, EdgeAddresses):
    compose: object
    http_port: int
    https_port: int
    ca_file: Path
    mail_port: int = 0
    project: str = PROJECT

    def compose_run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """`docker compose` with this stack's files (project name and ports come from the environment)."""
        return subprocess.run(
            [*self.compose.compose_command_property, *args], cwd=REPO_ROOT, capture_output=True, text=True, check=check
        )

    def exec_web(self, *argv: str) -> subprocess.CompletedProcess:
        return self.compose_run("exec", "-T", "web", *argv, check=False)

    def logs(self, service: str) -> str:
        return self.compose_run("logs", "--no-log-prefix", service).stdout

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
def web_source(tmp_path_factory) -> Path:
    """A copy of the app's source (services/web, beside a copy of .env.d as in the repository) that
    the dev stack bind-mounts and `make dev` serves: a test that edits the app edits this copy, never
    the repository, whose files the tiers running beside this one build images from."""
    root = tmp_path_factory.mktemp("source")
    shutil.copytree(REPO_ROOT / ".env.d", root / ".env.d")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    return Path(shutil.copytree(REPO_ROOT / "services/web", root / "services/web", ignore=ignore))


@pytest.fixture(scope="session")
def stack_project() -> str:
    """The dev stack's compose project: each tier that adjusts the stack names its own, so tiers
    can run side by side (tests/lanes.py)."""
    return PROJECT


@pytest.fixture(scope="session")
def stack(compose_ready, compose_files, stack_settings, stack_project, web_source, tmp_path_factory):
    from testcontainers.compose import DockerCompose

    http_port, https_port, mail_port = free_port(), free_port(), free_port()
    # The compose CLI that testcontainers runs inherits these.
    os.environ.update(
        COMPOSE_PROJECT_NAME=stack_project,
        HTTP_PORT=str(http_port),
        HTTPS_PORT=str(https_port),
        MAIL_UI_PORT=str(mail_port),
        WEB_SOURCE=str(web_source),
        **stack_settings,
    )
    remove_project(stack_project)
    compose = DockerCompose(REPO_ROOT, compose_file_name=compose_files, build=True, wait=True)
    ca_file = tmp_path_factory.mktemp("tls") / "ca.pem"
    stack = Stack(compose, http_port, https_port, ca_file, mail_port, stack_project)
    try:
        compose.start()
    except subprocess.CalledProcessError as error:
        logs = stack.compose_run("logs", "--tail=50", check=False).stdout
        raise AssertionError(f"the stack did not come up: {error.stderr.decode()[-3000:]}\n{logs[-5000:]}") from None
    ca_text, _, _ = compose.exec_in_container(["cat", "/etc/nginx/certs/ca.pem"], service_name="nginx")
    ca_file.write_text(ca_text)
    yield stack
    remove_project(stack_project)


class MailSinkBeside(Reachable):
    """A production stack (compose or Swarm) with compose/test-production.yml among its files: its
    web sends mail to the sink there, whose messages the tests read."""

    env_file: Path
    https_port: int

    def prepare(self) -> None:
        super().prepare()  # type: ignore[misc]  # the stack's own
        with self.env_file.open("a") as settings:
            # Production mails no link without PUBLIC_URL: the links lead to this stack's edge.
            settings.write(
                "\n# tests: mail to the sink beside the stack\nMAIL_SERVER=mail\nMAIL_PORT=1025\n"
                f"PUBLIC_URL=https://localhost:{self.https_port}\n"
            )


class TestProductionStack(MailSinkBeside, ProductionStack):
    """The production stack as the tests share it: the hook (profile), a mail sink the web sends to,
    and Prometheus's port chosen for `make monitoring`."""

    def __init__(self, home: Path):
        self.mail_port, self.prometheus_port = free_port(), free_port()
        settings = {
            "COMPOSE_PROFILES": "hook",
            "MAIL_UI_PORT": str(self.mail_port),
            "PROMETHEUS_PORT": str(self.prometheus_port),
            "PROMETHEUS_CONFIG": str(quick_prometheus_config(home)),
        }
        super().__init__(
            PRODUCTION_PROJECT, home, overlays=["compose/test-production.yml", QUICK_WAITS], settings=settings
        )

    def exec_web(self, *argv: str) -> subprocess.CompletedProcess:
        return self.compose("exec", "-T", "web", *argv)

    def logs(self, service: str) -> str:
        return self.compose("logs", "--no-log-prefix", service).stdout


@pytest.fixture(scope="session")
def production(compose_ready, tmp_path_factory):
    with TestProductionStack(tmp_path_factory.mktemp("prod")) as stack:
        yield stack


@pytest.fixture(params=["dev", "production"])
def any_stack(request):
    """The dev stack, then the production stack: what must hold in both."""
    return request.getfixturevalue("stack" if request.param == "dev" else "production")
