"""Push-to-deploy on Docker Swarm: a deploy checkout (tests/deploy_checkout.py) runs `make swarm`
with the hook profile, and a signed push makes the deployer build web, change the service's image,
and follow Swarm's rolling update; a commit whose tasks never get healthy is rolled back by Swarm.
Clients ask through the edge the whole time. Each test brings about the state it needs; the
engine's swarm is left as it was found."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest

from compose_stack import QUICK_SWARM
from deploy_checkout import DeployCheckout, break_healthz
from figures import record
from harness.polling import until
from harness.stacks import remove_swarm_stack, swarm_as_found
from hook.deployer import SWARM_PREPARE, SWARM_SETTLE, SWARM_SWITCH

PROJECT = "flask-stack-swarmdeploy"
REPLICAS = 2
REPORT = "swarm"  # test-artifacts/swarm.json


def service(name: str) -> Any:
    return docker.from_env().services.get(f"{PROJECT}_{name}")


def web_image() -> str:
    return str(service("web").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])


def host_as_tasks_reach_it() -> str:
    """A task's way out of an overlay network is the docker_gwbridge bridge: its gateway is the host."""
    return str(docker.from_env().networks.get("docker_gwbridge").attrs["IPAM"]["Config"][0]["Gateway"])


@pytest.fixture(scope="module")
def deploy(compose_ready, tmp_path_factory) -> Iterator[DeployCheckout]:
    d = DeployCheckout(PROJECT, tmp_path_factory.mktemp("swarm-push-to-deploy"))
    quick = "".join(f"{name}={value}\n" for name, value in QUICK_SWARM.items())
    d.prepare(f"DEPLOY_ROLL_TIMEOUT=600\nWEB_REPLICAS={REPLICAS}\n{quick}")
    client = docker.from_env()
    with swarm_as_found():
        try:
            result = d.make("swarm")
            assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
            label = f"com.docker.swarm.service.name={PROJECT}_nginx"
            nginx = until(lambda: client.containers.list(filters={"label": label}), timeout=120)
            assert nginx, d.make("swarm-ps").stdout
            d.serve(nginx[0], host_as_tasks_reach_it())
            # The receiver answers, and the deployer has learned the live commit from web's image.
            assert until(d.knows_the_live_commit, timeout=120), d.make("swarm-ps").stdout
            yield d
        finally:
            d.stop_serving()
            remove_swarm_stack(PROJECT)


def test_a_push_rolls_web_out_on_swarm_with_no_failed_request(deploy):
    old = deploy.version()
    version = f"2.1.{uuid.uuid4().int % 1000}"
    sha = deploy.commit(f"release {version} on swarm", version=version)
    with deploy.traffic() as traffic:
        response = deploy.push_event(sha)
        assert response.status_code == 202, response.text
        result = deploy.wait_for_deploy(response.json()["deploy_id"], timeout=900)
        assert result["status"] == "succeeded", json.dumps(result, indent=2)[-4000:]
        assert until(lambda: deploy.version() == version, timeout=30)
    record(
        REPORT,
        "push-to-deploy on swarm",
        {"deploy_seconds": result["duration_s"], "steps": {s["name"]: s["duration_s"] for s in result["steps"]}}
        | traffic.summary(),
    )
    assert traffic.failures == [], traffic.failures[:5]
    assert [s["name"] for s in result["steps"]] == [*SWARM_PREPARE, *SWARM_SWITCH, *SWARM_SETTLE]
    assert {o.detail for o in traffic.answered("/api/healthz")} <= {old, version}
    assert web_image() == f"flask-stack/web:{sha}"
    assert deploy.hooks_get("/hooks/status")["live"]["sha"] == sha
    assert f"WEB_TAG={sha}" in (deploy.checkout / ".env").read_text()  # the next `make swarm` keeps it


def test_a_commit_whose_tasks_never_get_healthy_is_rolled_back_by_swarm(deploy):
    serving, old = web_image(), deploy.version()
    broken = deploy.commit("broken healthz on swarm", version="2.2.0-broken", edit=break_healthz)
    with deploy.traffic() as traffic:
        response = deploy.push_event(broken)
        assert response.status_code == 202, response.text
        result = deploy.wait_for_deploy(response.json()["deploy_id"], timeout=900)
    record(REPORT, "broken push on swarm, rolled back", {"deploy_seconds": result["duration_s"]} | traffic.summary())
    assert result["status"] == "rolled_back", json.dumps(result, indent=2)[-4000:]
    assert "rollback_completed" in result["reason"]
    assert traffic.failures == [], traffic.failures[:5]
    assert {o.detail for o in traffic.answered("/api/healthz")} == {old}
    assert web_image() == serving
    assert deploy.hooks_get("/hooks/status")["live"]["sha"] != broken
