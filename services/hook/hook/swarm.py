"""The stack on Docker Swarm as the deployer sees it. There web is a Swarm service, and Swarm itself
replaces its tasks one at a time when its image changes: start-first, each new task healthy before
an old one stops, and the whole update rolled back when a new task fails (compose/swarm.yml). The
deployer builds the image, pushes it where every node can pull it, changes the service's image
(`docker service update --image`), and follows the update to its end. The deployer's unit tests
stand a fake Docker client in for Docker's."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
from docker.models.containers import Container

from .ledger import COMMIT_ID
from .settings import DeploySettings
from .stack import JOB_SERVICES, remove_image
from .steps import Log, StepFailed, run_command, until

# The label `docker stack deploy` puts on every container of a stack: its name.
STACK_LABEL = "com.docker.stack.namespace"
# An update's states while Swarm is still at it; any other is where it ended.
UNDER_WAY = frozenset({"updating", "rollback_started"})
# A task's states that say it did not run as it should (Swarm's Err says why).
FAILED_TASK = frozenset({"failed", "rejected"})
WEB_REPOSITORY = "flask-stack/web"


@dataclass(frozen=True)
class Update:
    """How Swarm's update of a service ended: completed, rollback_completed (Swarm put the previous
    image back by itself), paused or rollback_paused (it stopped halfway: both versions may run)."""

    state: str
    message: str


class SwarmStack:
    def __init__(
        self,
        client: docker.DockerClient,
        name: str,
        settings: DeploySettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.client = client
        self.name = name
        self.settings = settings
        self.clock = clock
        self.sleep = sleep

    @classmethod
    def of_container(cls, client: docker.DockerClient, container: Container, settings: DeploySettings) -> SwarmStack:
        return cls(client, container.labels[STACK_LABEL], settings)

    @property
    def root(self) -> str:
        return self.settings.root

    @property
    def web_service_name(self) -> str:
        return f"{self.name}_web"

    def compose(self, log: Log, args: list[str], timeout: float, env: dict[str, str]) -> None:
        """docker-compose on the production file, with the env files `make swarm` used (the
        machine's .env, then the production settings): the same build as `make swarm`'s."""
        argv = ["docker-compose", "-p", self.name]
        for env_file in self.settings.env_files:
            if Path(env_file).exists():  # the machine's .env is optional, as for `make swarm`
                argv += ["--env-file", env_file]
        argv += ["-f", str(Path(self.root) / "docker-compose.prod.yml"), *args]
        # The production file reads its settings file from PROD_ENV_FILE.
        run_command(log, argv, timeout, cwd=self.root, env={**env, "PROD_ENV_FILE": self.settings.env_files[-1]})

    def _web_service(self) -> Any:
        try:
            return self.client.services.get(self.web_service_name)  # type: ignore[no-untyped-call]  # unannotated in docker
        except docker.errors.NotFound:
            raise StepFailed(f"no service {self.web_service_name} in this swarm") from None

    def web_image(self) -> str:
        return str(self._web_service().attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"])

    def image_name(self, sha: str) -> str:
        """The name the service runs the image of ``sha`` by: in the registry when there is one."""
        local = f"{WEB_REPOSITORY}:{sha}"
        return f"{self.settings.registry}/{local}" if self.settings.registry else local

    def push(self, log: Log, sha: str) -> None:
        """The image of ``sha`` into the registry, where every node pulls it from. With no registry
        the image is on this node only: enough for a swarm of one."""
        if not self.settings.registry:
            log.write("no registry (REGISTRY): the image stays on this node, which a swarm of one node is enough for")
            return
        name = self.image_name(sha)
        self.client.images.get(f"{WEB_REPOSITORY}:{sha}").tag(name)
        repository, tag = name.rsplit(":", 1)
        for line in self.client.images.push(repository, tag, stream=True, decode=True):
            if "error" in line:
                raise StepFailed(f"pushing {name}: {line['error']}")
        log.write(f"pushed {name}")

    def _update_status(self, service: Any) -> tuple[str | None, str, str]:
        """The service's last update: when it started, its state, and Swarm's message."""
        status = service.attrs.get("UpdateStatus") or {}
        return status.get("StartedAt"), status.get("State", ""), status.get("Message", "")

    def roll(self, log: Log, image: str, timeout: float) -> Update:
        """Change web's image and follow Swarm's update until it ends (or ``timeout``)."""
        service = self._web_service()
        if self.web_image() == image:
            log.write(f"{self.web_service_name} runs {image} already")
            return Update("completed", "nothing to replace")
        previous_start = self._update_status(service)[0]
        # The rest of the spec as it is: replicas, update and rollback policy, secrets, networks.
        service.update(image=image, fetch_current_spec=True)
        log.write(f"{self.web_service_name} -> {image}: Swarm replaces its tasks one at a time")
        said = ""
        state = ""

        def ended() -> Update | None:
            nonlocal said, state
            service.reload()
            started, state, message = self._update_status(service)
            # The update is asynchronous: until it has begun, the status is the last update's.
            begun = started is not None and started != previous_start
            if begun and f"{state}: {message}" != said:
                said = f"{state}: {message}"
                log.write(said)
            return Update(state, message) if begun and state not in UNDER_WAY else None

        update = until(ended, timeout, self.settings.poll_interval, self.clock, self.sleep)
        if update is None:
            raise StepFailed(
                f"Swarm's update of {self.web_service_name} had not ended after {timeout:.0f}s "
                f"({state or 'not begun'}); it goes on: see `make swarm-ps`"
            )
        if update.state != "completed":
            for why in self.why_tasks_failed(service):
                log.write(why)
        return update

    def update_jobs(self, log: Log, image: str) -> None:
        """The background jobs' services onto ``image``, as web: Swarm updates them by their own
        update_config (compose/swarm.yml) while the deploy ends; not followed (no traffic waits)."""
        for service_name in (f"{self.name}_{service}" for service in JOB_SERVICES):
            try:
                service = self.client.services.get(service_name)  # type: ignore[no-untyped-call]  # unannotated in docker
            except docker.errors.NotFound:
                log.write(f"no service {service_name} in this swarm")
                continue
            if service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == image:
                log.write(f"{service_name} runs {image} already")
                continue
            service.update(image=image, fetch_current_spec=True)
            log.write(f"{service_name} -> {image}: Swarm updates it")

    @staticmethod
    def why_tasks_failed(service: Any, most: int = 3) -> list[str]:
        """Swarm's own words for web's newest tasks that failed or were refused (an unhealthy
        container, an exit code, an image no node could pull): its update says only which task."""
        failed = [task for task in service.tasks() if task["Status"].get("State") in FAILED_TASK]
        failed.sort(key=lambda task: task["Status"].get("Timestamp", ""), reverse=True)
        return [
            f"task {task['ID'][:12]} of {task['Spec']['ContainerSpec']['Image'].split('@', 1)[0]} "
            f"{task['Status']['State']}: {task['Status'].get('Err') or task['Status'].get('Message', '')}"
            for task in failed[:most]
        ]

    def revision_of_running_web(self) -> str | None:
        """The commit web's image was built from: its tag says (a deployed image's does), else the
        APP_REVISION built into it (`make swarm` builds with the checked-out commit's)."""
        image = self.web_image().split("@", 1)[0]
        tag = image.rsplit(":", 1)[-1]
        if COMMIT_ID.fullmatch(tag):
            return tag
        try:
            env = self.client.images.get(image).attrs["Config"].get("Env") or []
        except docker.errors.ImageNotFound:
            return None  # built on another node: the first deploy records it
        revision = dict(item.split("=", 1) for item in env if "=" in item).get("APP_REVISION", "")
        return revision if COMMIT_ID.fullmatch(revision) else None

    def remove_image(self, name: str) -> str:
        return remove_image(self.client, name)
