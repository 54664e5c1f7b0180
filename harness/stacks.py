"""The production compose stack as its own project (generated secrets, ports of its own), for the
tests and the benchmark; and the one way to remove what a project started."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import docker
from docker.models.containers import Container

from harness.paths import REPO_ROOT
from harness.polling import answers, until
from harness.ports import free_port

REMOVE_PROJECT = REPO_ROOT / "compose/scripts/remove-project.sh"


def remove_project(project: str, volumes: bool = True) -> None:
    """Every container, network (and volume) of ``project``, whether or not its files still exist."""
    subprocess.run([str(REMOVE_PROJECT), *(["--volumes"] if volumes else []), project], capture_output=True)


# Compose labels every container it makes with this (True for `compose run`'s); a container of an
# image compose built carries the project's labels too, whoever runs it, but not this one.
MADE_BY_COMPOSE = "com.docker.compose.oneoff"


def containers(project: str, service: str) -> list[Container]:
    """The running containers compose made for one service of ``project`` (not another stack's
    containers of an image this project built: those carry its labels too)."""
    labels = [f"com.docker.compose.project={project}", f"com.docker.compose.service={service}"]
    found: list[Container] = docker.from_env().containers.list(filters={"label": [*labels, f"{MADE_BY_COMPOSE}=False"]})
    return found


def output(container: Container, argv: Sequence[str]) -> str:
    """What a command run in ``container`` printed (stdout and stderr together), as text."""
    result = container.exec_run(list(argv))
    return cast(bytes, result.output).decode()


def memory_mib(container: Container) -> float:
    """The container's memory use without the page cache, as `docker stats` counts it."""
    stats = cast(dict[str, Any], container.stats(stream=False))["memory_stats"]
    return float(stats["usage"] - stats.get("stats", {}).get("cache", 0)) / 2**20


class StackFailed(RuntimeError):
    """The stack did not come up; the message holds compose's complaint and the services' last logs."""


class EdgeAddresses:
    """Where a stack's nginx answers on this machine: its two published ports, as URLs."""

    http_port: int
    https_port: int

    @property
    def https(self) -> str:
        return f"https://localhost:{self.https_port}"

    @property
    def http(self) -> str:
        return f"http://localhost:{self.http_port}"


class ProductionStack(EdgeAddresses):
    """docker-compose.prod.yml (plus ``overlays``) as project ``project``, its settings and secrets
    in ``home`` as `make secrets` writes them, on free ports, with a temporary certificate."""

    def __init__(
        self, project: str, home: Path, overlays: Sequence[str] = (), settings: Mapping[str, str] | None = None
    ):
        self.project = project
        self.home = home
        self.overlays = tuple(overlays)
        self.env_file = home / "env.production"
        self.secrets_dir = home / "secrets"
        self.ca_file = home / "ca.pem"
        self.http_port, self.https_port = free_port(), free_port()
        self.settings = {
            # Images of its own (web's and nginx's tag): another stack building beside this one
            # then cannot move the tag this one runs from, which a later `up` would recreate from.
            "WEB_TAG": project,
            "PROD_ENV_FILE": str(self.env_file),
            "HTTP_PORT": str(self.http_port),
            "HTTPS_PORT": str(self.https_port),
            "TLS_CERTS_DIR": str(home / "certs"),
            **(settings or {}),
        }

    @property
    def command(self) -> list[str]:
        env_files = [
            arg for path in (REPO_ROOT / ".env", self.env_file) if path.exists() for arg in ("--env-file", str(path))
        ]
        files = [arg for name in ("docker-compose.prod.yml", *self.overlays) for arg in ("-f", name)]
        return ["docker", "compose", "-p", self.project, *env_files, *files]

    @property
    def environment(self) -> dict[str, str]:
        # The shell's variables win over --env-file: drop what another stack's run may have set.
        env = {k: v for k, v in os.environ.items() if k not in {"COMPOSE_PROJECT_NAME", "COMPOSE_PROFILES"}}
        return {**env, "COMPOSE_PROFILES": "", **self.settings}

    def compose(self, *args: str, check: bool = False) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.command, *args], cwd=REPO_ROOT, env=self.environment, capture_output=True, text=True, check=check
        )

    def make(self, *args: str) -> subprocess.CompletedProcess[str]:
        """A target of the Makefile for this stack, as an operator runs it."""
        return subprocess.run(
            [
                "make",
                "--no-print-directory",
                *args,
                f"PROD_PROJECT={self.project}",
                f"PROD_ENV={self.env_file}",
                f"EXTRA_COMPOSE_FILES={' '.join(self.overlays)}",
            ],
            cwd=REPO_ROOT,
            env=self.environment,
            capture_output=True,
            text=True,
        )

    def prepare(self) -> None:
        """Folders, settings and secrets, as an operator has them before the first start."""
        (self.home / "certs").mkdir(exist_ok=True)
        subprocess.run(
            [str(REPO_ROOT / "compose/scripts/make-secrets.sh"), str(self.env_file)], check=True, capture_output=True
        )

    def up(self) -> None:
        self.prepare()
        remove_project(self.project)
        started = self.compose("up", "-d", "--build", "--wait")
        if started.returncode != 0:
            logs = self.compose("logs", "--tail=40").stdout
            self.down()
            raise StackFailed(f"the production stack did not come up: {started.stderr[-3000:]}\n{logs[-4000:]}")
        self.keep_ca()

    def keep_ca(self) -> None:
        """Until real certificates are mounted, nginx serves one its own CA signed: keep that CA."""
        self.ca_file.write_text(output(self.container("nginx"), ["cat", "/run/nginx/tls/ca.pem"]))

    def down(self) -> None:
        remove_project(self.project)

    def container(self, service: str) -> Container:
        (found,) = containers(self.project, service)
        return found

    def __enter__(self) -> ProductionStack:
        self.up()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.down()


class SwarmStack(ProductionStack):
    """The same stack deployed to this engine's swarm as stack ``project``, by the script behind
    `make swarm` (docker-compose.prod.yml with compose/swarm.yml)."""

    def __init__(self, project: str, home: Path, settings: Mapping[str, str] | None = None):
        super().__init__(project, home, overlays=["compose/swarm.yml"], settings=settings)
        # swarm.sh chooses web's tag (and records the one it rolled to) itself.
        self.settings.pop("WEB_TAG")
        # The machine's .env (base images, build certificates), copied: what a roll records goes here.
        self.machine_env = home / "machine.env"

    def swarm(self, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
        """`compose/scripts/swarm.sh deploy | init | roll [IMAGE] | down | ps | registry [stop]` for this
        stack, with ``settings`` (REGISTRY=...) in its environment."""
        env = {**self.environment, "STACK": self.project, "ENV_FILE": str(self.machine_env), **settings}
        return subprocess.run(
            [str(REPO_ROOT / "compose/scripts/swarm.sh"), *args], cwd=REPO_ROOT, env=env, capture_output=True, text=True
        )

    def up(self) -> None:
        self.prepare()
        repo_env = REPO_ROOT / ".env"
        self.machine_env.write_text(repo_env.read_text() if repo_env.exists() else "")
        deployed = self.swarm("deploy")
        if deployed.returncode != 0:
            self.down()
            raise StackFailed(f"the stack was not deployed: {deployed.stdout[-2000:]}{deployed.stderr[-3000:]}")
        self.keep_ca()
        # Every task runs; nginx finds web's by DNS within a second or two of that.
        if not until(self.serving, timeout=120):
            raise StackFailed(f"the edge does not reach web: {self.swarm('ps').stdout[-3000:]}")

    def serving(self) -> bool:
        """The edge answers /api/readyz from a web task."""
        return answers(self.https + "/api/readyz", verify=str(self.ca_file))

    def down(self) -> None:
        remove_swarm_stack(self.project)

    def tasks(self, service: str) -> list[Container]:
        """The running containers of a service's tasks."""
        found: list[Container] = docker.from_env().containers.list(
            filters={"label": f"com.docker.swarm.service.name={self.project}_{service}"}
        )
        return found

    def container(self, service: str) -> Container:
        (found,) = self.tasks(service)
        return found


def remove_swarm_stack(stack: str) -> None:
    """`swarm.sh down` (which waits until the stack's containers are gone), then its volumes. Not
    forced: a volume removed under a running container keeps its files for the next of its name."""
    removed = subprocess.run(
        [str(REPO_ROOT / "compose/scripts/swarm.sh"), "down"],
        cwd=REPO_ROOT,
        env={**os.environ, "STACK": stack},
        capture_output=True,
        text=True,
    )
    if removed.returncode != 0:
        raise StackFailed(f"stack {stack} was not removed: {removed.stdout[-2000:]}{removed.stderr[-2000:]}")
    for volume in docker.from_env().volumes.list(filters={"label": f"com.docker.stack.namespace={stack}"}):
        volume.remove()


# The node labels `make swarm` puts on a node when no node has them (compose/scripts/swarm.sh).
SWARM_LABELS = ("flask-stack.data", "flask-stack.edge")


def bridge_gateway(client: docker.DockerClient) -> str:
    """This engine as containers on its default bridge reach it (where a second engine in a
    container joins its swarm). The default bridge's IPAM names no gateway: Docker gives the bridge
    its subnet's first address."""
    config = client.networks.get("bridge").attrs["IPAM"]["Config"][0]
    return str(config.get("Gateway") or next(ipaddress.ip_network(config["Subnet"]).hosts()))


@contextlib.contextmanager
def swarm_as_found() -> Iterator[None]:
    """Leave this engine's swarm as it was: left again if the block made one (`make swarm` does
    when there is none), with the docker_gwbridge network the swarm made, else without the node
    labels the block added."""
    client = docker.from_env()

    def node() -> Any:
        return client.nodes.get(client.info()["Swarm"]["NodeID"])

    made = client.info()["Swarm"]["LocalNodeState"] != "active"
    bridge_before = bool(client.networks.list(names=["docker_gwbridge"]))
    labels_before = {} if made else dict(node().attrs["Spec"].get("Labels") or {})
    try:
        yield
    finally:
        if made:
            client.swarm.leave(force=True)
            if not bridge_before:
                for network in client.networks.list(names=["docker_gwbridge"]):
                    network.remove()
        else:
            spec = node().attrs["Spec"]
            labels = spec.get("Labels") or {}
            spec["Labels"] = {k: v for k, v in labels.items() if k not in SWARM_LABELS or k in labels_before}
            node().update(spec)
