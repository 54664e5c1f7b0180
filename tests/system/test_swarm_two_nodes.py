"""The production stack on a swarm of two nodes: this engine (manager; Postgres, Redis and the edge
by their labels) and a second Docker engine in a container (tests/system/swarm_node: Debian's
docker.io) that joins as a worker. Images come from a registry (`make registry`), as every node of
a bigger swarm needs: the second engine has none of the stack's images until it pulls them.

Web's two replicas land one on each node; both answer through the edge (across the overlay
network), and a rolling update under load across the two nodes fails no request.

This engine cannot run a `--privileged` container (it lacks CAP_SYS_RESOURCE itself), so the
second engine gets the capabilities dockerd needs one by one, the host's cgroups, and its own
volume for /var/lib/docker (overlayfs cannot sit on overlayfs)."""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import pytest
import requests

from compose_stack import QUICK_SWARM, QUICK_WAITS
from contract import Api
from docker_env import base_image
from figures import record
from harness.paths import REPO_ROOT
from harness.polling import until
from harness.ports import free_port
from harness.stacks import SwarmStack, bridge_gateway, swarm_as_found
from traffic import Traffic

PROJECT = "flask-stack-twonodes"
NODE_IMAGE = "flask-stack-test/swarm-node:latest"
REPORT = "swarm"  # test-artifacts/swarm.json
# The module's setup builds the second engine, pushes every image of the stack and deploys it.
pytestmark = pytest.mark.timeout(1200)
NODE_CAPABILITIES = [
    *("SYS_ADMIN", "NET_ADMIN", "NET_RAW", "SYS_MODULE", "SYS_PTRACE", "MKNOD", "SYS_CHROOT"),
    *("SETFCAP", "AUDIT_CONTROL", "DAC_READ_SEARCH", "IPC_LOCK", "SYS_NICE", "LINUX_IMMUTABLE"),
]


class SecondNode:
    """A Docker engine in a container of this one, joined to this engine's swarm as a worker."""

    def __init__(self, client: docker.DockerClient, registry_port: int, registry_address: str):
        self.client = client
        self.name = f"flask-stack-node2-{uuid.uuid4().hex[:6]}"
        self.registry_forward = f"{registry_port}:{registry_address}:5000"
        self.container: Any = None

    def start(self) -> None:
        built = subprocess.run(
            [
                *("docker", "build", "-q", "-t", NODE_IMAGE, "--build-arg"),
                f"BASE_IMAGE={base_image('PYTHON_IMAGE')}",
                str(REPO_ROOT / "tests/system/swarm_node"),
            ],
            capture_output=True,
            text=True,
        )
        assert built.returncode == 0, built.stderr[-3000:]
        self.container = self.client.containers.run(
            NODE_IMAGE,
            name=self.name,
            hostname=self.name,
            detach=True,
            cap_add=NODE_CAPABILITIES,
            security_opt=["seccomp=unconfined", "apparmor=unconfined"],
            cgroupns="host",
            volumes={
                "/sys/fs/cgroup": {"bind": "/sys/fs/cgroup", "mode": "rw"},
                self.name: {"bind": "/var/lib/docker"},
            },
            environment={"REGISTRY_FORWARD": self.registry_forward},
        )
        assert until(lambda: self.docker("info").returncode == 0, timeout=60), self.container.logs()[-3000:]

    def docker(self, *args: str) -> Any:
        result = self.container.exec_run(["docker", *args])
        return subprocess.CompletedProcess(args, result.exit_code, result.output.decode(errors="replace"), "")

    def join(self, manager: str) -> None:
        self.client.swarm.reload()
        token = self.client.swarm.attrs["JoinTokens"]["Worker"]
        joined = self.docker("swarm", "join", "--token", token, f"{manager}:2377")
        assert joined.returncode == 0, joined.stdout

    def remove(self) -> None:
        if self.container is None:
            return
        self.docker("swarm", "leave", "--force")
        self.container.remove(force=True)
        self.client.volumes.get(self.name).remove()
        for node in self.client.nodes.list(filters={"name": self.name}):
            node.remove(force=True)


class TwoNodeSwarm(SwarmStack):
    def web_tasks(self) -> list[dict[str, Any]]:
        service = docker.from_env().services.get(f"{self.project}_web")
        return [t for t in service.tasks(filters={"desired-state": "running"}) if t["Status"]["State"] == "running"]

    def converged(self, replicas: int) -> bool:
        service = docker.from_env().services.get(f"{self.project}_web")
        updating = (service.attrs.get("UpdateStatus") or {}).get("State") in {"updating", "rollback_started"}
        return len(self.web_tasks()) == replicas and not updating

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.https + path, verify=str(self.ca_file), timeout=10, **kwargs)

    def instances(self, count: int) -> set[str]:
        """healthz's instance ids, asked through the edge until ``count`` different ones answered."""
        answered: set[str] = set()

        def enough() -> bool:
            answered.add(self.get("/api/healthz").json()["instance"])
            return len(answered) >= count

        until(enough, timeout=60, interval=0.1)
        return answered


@pytest.fixture(scope="module")
def two_nodes(compose_ready, tmp_path_factory) -> Iterator[tuple[TwoNodeSwarm, SecondNode, str]]:
    client = docker.from_env()
    manager = bridge_gateway(client)
    swarm = client.info()["Swarm"]
    # `make test` makes this engine a swarm for the whole run, advertised there (tests/lanes.py).
    if swarm["LocalNodeState"] == "active" and (swarm["NodeAddr"] != manager or swarm["Nodes"] != 1):
        pytest.skip("this engine is in a swarm already: the second node could not join it on this test's terms")
    registry_port = free_port()
    registry = f"127.0.0.1:{registry_port}"
    settings = {"REGISTRY_NAME": f"flask-stack-registry-{PROJECT}", "REGISTRY_PUBLISH": registry}
    stack = TwoNodeSwarm(
        PROJECT,
        tmp_path_factory.mktemp("two-nodes"),
        settings={
            "WEB_REPLICAS": "2",
            "REGISTRY": registry,
            "SWARM_ADVERTISE_ADDR": manager,
            "EXTRA_COMPOSE_FILES": QUICK_WAITS,
            **QUICK_SWARM,
        },
    )
    node: SecondNode | None = None
    with swarm_as_found():
        try:
            started = stack.swarm("registry", **settings)
            assert started.returncode == 0, started.stdout + started.stderr
            registry_ip = client.containers.get(settings["REGISTRY_NAME"]).attrs["NetworkSettings"]["IPAddress"]
            made = stack.swarm("init")
            assert made.returncode == 0, made.stdout + made.stderr
            node = SecondNode(client, registry_port, registry_ip)
            node.start()
            node.join(manager)
            assert until(lambda: len(client.nodes.list(filters={"role": "worker"})) == 1, timeout=60)
            stack.up()
            assert until(lambda: stack.converged(2), timeout=300), stack.swarm("ps").stdout
            yield stack, node, registry
        finally:
            stack.down()
            if node is not None:
                node.remove()
            stack.swarm("registry", "stop", **settings)
            for volume in client.volumes.list(filters={"name": settings["REGISTRY_NAME"]}):
                volume.remove()


def test_web_runs_on_both_nodes_from_the_registry_and_both_answer_through_the_edge(two_nodes):
    stack, node, registry = two_nodes
    nodes = {task["NodeID"] for task in stack.web_tasks()}
    assert len(nodes) == 2, "web's replicas did not spread over the two nodes"
    # The second engine had none of the stack's images: it pulled web's from the registry.
    pulled = node.docker("images", "--format", "{{.Repository}}")
    assert f"{registry}/flask-stack/web" in pulled.stdout.split(), pulled.stdout
    assert len(stack.instances(2)) == 2
    session = requests.Session()
    session.verify, session.trust_env = str(stack.ca_file), False
    tokens = Api(session, stack.https).tokens(f"two-nodes-{uuid.uuid4().hex[:8]}@example.com")
    # Requests on either node's task read and write Postgres and Redis on the other.
    for _ in range(10):
        me = stack.get("/api/users/me", headers={"Authorization": f"Bearer {tokens['access_token']}"})
        assert me.status_code == 200, me.text


def test_a_rolling_update_across_the_two_nodes_fails_no_request(two_nodes):
    stack, _, registry = two_nodes
    session = requests.Session()
    session.verify, session.trust_env = str(stack.ca_file), False
    token = Api(session, stack.https).tokens(f"two-nodes-{uuid.uuid4().hex[:8]}@example.com")["access_token"]
    before = stack.instances(2)
    traffic = Traffic(
        [stack.https + "/api/healthz", stack.https + "/api/users/me"],
        str(stack.ca_file),
        headers={"Authorization": f"Bearer {token}"},
    )
    with traffic:
        started = time.monotonic()
        rolled = stack.swarm("roll", REGISTRY=registry)
        rolled_in = time.monotonic() - started
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert until(lambda: stack.converged(2), timeout=180), stack.swarm("ps").stdout
    record(REPORT, "rolling update across two nodes", {**traffic.summary(), "roll_seconds": round(rolled_in, 1)})
    assert traffic.failures == [], traffic.failures[:5]
    update = docker.from_env().services.get(f"{PROJECT}_web").attrs["UpdateStatus"]
    assert update["State"] == "completed", update
    assert stack.instances(2).isdisjoint(before)  # every task replaced
    # (Where the new tasks run is Swarm's choice: it spreads by the tasks present when it places
    # one, the old ones included, so after a start-first update both may be on one node.)
