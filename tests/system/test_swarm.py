"""The production stack on Docker Swarm, deployed by the script behind `make swarm`: it converges,
holds the API contract through the edge, spreads requests over both web replicas, rolls a broken
image back, and heals a killed task, under load with no failed request; removing it leaves nothing
running. (A rolling update under load, and images from a registry, are tested across two nodes in
test_swarm_two_nodes.py, and through the deployer in test_swarm_push_to_deploy.py.)

Every test starts from a converged stack and leaves one. The engine is left as it was found: a
swarm this module had to make is left at the end, and node labels it added are taken off."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker
import pytest
import requests

from compose_stack import QUICK_SWARM, QUICK_WAITS, MailSinkBeside
from contract import Api
from figures import record
from harness.polling import until
from harness.ports import free_port
from harness.stacks import SwarmStack, swarm_as_found
from traffic import Traffic

from .test_auth_over_tls import (
    test_a_wrong_password_and_an_unknown_user_are_the_same_401,
    test_accounts_by_mail_verify_then_reset_a_forgotten_password,
    test_logout_all_ends_every_session_of_the_user,
    test_register_login_me_refresh_reuse_logout,
)

# The account flows of test_auth_over_tls.py that Swarm runs too (on the `any_stack` below).
ACCOUNT_FLOWS = (
    test_register_login_me_refresh_reuse_logout,
    test_a_wrong_password_and_an_unknown_user_are_the_same_401,
    test_logout_all_ends_every_session_of_the_user,
    test_accounts_by_mail_verify_then_reset_a_forgotten_password,
)

PROJECT = "flask-stack-swarmtest"
REPLICAS = 2
REPORT = "swarm"  # test-artifacts/swarm.json


class Swarm(MailSinkBeside, SwarmStack):
    """The stack with the tests' mail sink (compose/test-production.yml) among its files."""

    def __init__(self, home: Path):
        self.mail_port = free_port()
        settings = {
            "WEB_REPLICAS": str(REPLICAS),
            "EXTRA_COMPOSE_FILES": f"compose/test-production.yml {QUICK_WAITS}",
            "MAIL_UI_PORT": str(self.mail_port),
            **QUICK_SWARM,
        }
        super().__init__(PROJECT, home, settings=settings)

    def service(self, name: str) -> Any:
        return docker.from_env().services.get(f"{self.project}_{name}")

    def converged(self) -> bool:
        """Every service has all its replicas running, and no update is under way."""
        for service in docker.from_env().services.list(filters={"label": f"com.docker.stack.namespace={PROJECT}"}):
            wanted = service.attrs["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 1)
            running = [
                t for t in service.tasks(filters={"desired-state": "running"}) if t["Status"]["State"] == "running"
            ]
            updating = service.attrs.get("UpdateStatus", {}).get("State") in {"updating", "rollback_started"}
            if len(running) != wanted or updating:
                return False
        return True

    def wait_converged(self) -> None:
        assert until(self.converged, timeout=180, interval=1), self.swarm("ps").stdout

    def web_image(self) -> str:
        return self.service("web").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]

    def instances(self) -> set[str]:
        """The instance ids (healthz) of the running web tasks, asked through the edge until each
        has answered once."""
        answered: set[str] = set()

        def all_answered() -> bool:
            answered.add(self.get("/api/healthz").json()["instance"])
            return len(answered) >= len(self.tasks("web"))

        assert until(all_answered, timeout=30, interval=0.1)
        return answered

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.https + path, verify=str(self.ca_file), timeout=10, **kwargs)

    def traffic(self, token: str) -> Traffic:
        return Traffic(
            [self.https + "/api/healthz", self.https + "/api/users/me"],
            str(self.ca_file),
            headers={"Authorization": f"Bearer {token}"},
        )


@pytest.fixture(scope="module")
def swarm(compose_ready, tmp_path_factory) -> Iterator[Swarm]:
    client = docker.from_env()
    stack = Swarm(tmp_path_factory.mktemp("swarm"))
    with swarm_as_found():
        try:
            stack.up()
            yield stack
            removed = stack.swarm("down")
            assert removed.returncode == 0, removed.stdout + removed.stderr
            assert client.containers.list(all=True, filters={"label": f"com.docker.stack.namespace={PROJECT}"}) == []
            assert client.networks.list(filters={"label": f"com.docker.stack.namespace={PROJECT}"}) == []
        finally:
            stack.down()


@pytest.fixture
def converged(swarm: Swarm) -> Swarm:
    swarm.wait_converged()
    return swarm


@pytest.fixture
def any_stack(converged: Swarm) -> Swarm:
    """Where the account flows imported above run in this module: the Swarm stack."""
    return converged


@pytest.fixture
def user_token(converged: Swarm) -> str:
    session = requests.Session()
    session.verify, session.trust_env = str(converged.ca_file), False
    return Api(session, converged.https).tokens(f"swarm-{uuid.uuid4().hex[:8]}@example.com")["access_token"]


def test_the_stack_converges_and_holds_the_contract_through_the_edge(converged):
    session = requests.Session()
    session.verify, session.trust_env = str(converged.ca_file), False
    api = Api(session, converged.https)
    email = f"contract-{uuid.uuid4().hex[:8]}@example.com"
    tokens = api.tokens(email)
    me = session.get(converged.https + "/api/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and me.json()["email"] == email
    ready = converged.get("/api/readyz")
    assert ready.status_code == 200 and ready.json()["checks"]["redis"]["status"] == "ok"
    missing = converged.get("/api/nope")
    assert missing.status_code == 404 and missing.headers["Content-Type"].startswith("application/json")
    # Migrations ran once per deploy: the schema is there and the roles were made.
    assert converged.get("/api/users", headers={"Authorization": f"Bearer {tokens['access_token']}"}).status_code == 403


def test_the_edge_is_published_on_the_node_and_every_service_is_found_by_dns(converged):
    nginx = converged.service("nginx").attrs
    assert {p["PublishMode"] for p in nginx["Endpoint"]["Spec"]["Ports"]} == {"host"}
    for name in ("web", "db", "redis", "nginx"):
        assert converged.service(name).attrs["Spec"]["EndpointSpec"]["Mode"] == "dnsrr", name


def test_both_web_replicas_serve(converged):
    assert len(converged.tasks("web")) == REPLICAS
    assert len(converged.instances()) == REPLICAS


def test_a_broken_image_rolls_back_by_itself_and_no_request_fails(converged, user_token):
    good = converged.web_image()
    broken = f"flask-stack/web:broken-{uuid.uuid4().hex[:8]}"
    dockerfile = (
        f"FROM {good}\nUSER root\n"
        "RUN echo 'raise RuntimeError(\"this image is deliberately broken\")' >> api/__init__.py\n"
        "USER 10001:10001\n"
    )
    built = subprocess.run(
        ["docker", "build", "-q", "-t", broken, "-"], input=dockerfile, capture_output=True, text=True
    )
    assert built.returncode == 0, built.stderr
    try:
        with converged.traffic(user_token) as traffic:
            rolled = converged.swarm("roll", broken)
        assert rolled.returncode != 0
        assert "rollback_completed" in rolled.stdout, rolled.stdout + rolled.stderr
        converged.wait_converged()
        record(REPORT, "broken image, rolled back", traffic.summary())
        assert converged.web_image() == good
        assert traffic.failures == [], traffic.failures[:5]
        assert len(converged.instances()) == REPLICAS
    finally:
        docker.from_env().images.remove(broken, force=True)


def test_a_killed_web_task_is_replaced_and_no_request_fails(converged, user_token):
    before = converged.tasks("web")
    victim = before[0]
    with converged.traffic(user_token) as traffic:
        until(lambda: len(traffic.instances()) == REPLICAS, timeout=30, interval=0.1)
        killed_at = time.monotonic()
        victim.kill()
        # Replaced: a task that was not there before runs (Swarm may still count the victim as
        # running for a moment after the kill, so "converged" alone can come too early).
        replaced = until(
            lambda: {c.id for c in converged.tasks("web")} - {c.id for c in before} and converged.converged(),
            timeout=120,
            interval=0.5,
        )
        replaced_after = time.monotonic() - killed_at
        # The edge finds the new task by itself once it is healthy: it answers too.
        serving = until(lambda: len(traffic.instances()) == REPLICAS + 1, timeout=60, interval=0.2)
    record(REPORT, "a web task killed", {**traffic.summary(), "replaced_after_seconds": round(replaced_after, 1)})
    assert replaced, converged.swarm("ps").stdout
    assert serving, traffic.summary()
    assert traffic.failures == [], traffic.failures[:5]
