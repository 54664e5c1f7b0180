"""The running stack as the deployer sees it: the project's web containers, its nginx, and
docker-compose for what compose does best (build, one-off migrate, scale up). Docker's API for the
rest. The deployer's unit tests stand a fake in for this class."""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Protocol, cast

import docker
from docker.models.containers import Container

from .steps import Log, StepFailed, run_command

WEB_PORT = 8000
# A line of nginx's access log (log_format edge): its status, and the upstream that answered.
EDGE_LOG_LINE = re.compile(r'" (?P<status>\d{3}) .* up=(?P<upstreams>\S.*)$')


@dataclass(frozen=True)
class Web:
    """One web container: its name (nginx reaches it by that), and its addresses (nginx logs those)."""

    id: str
    name: str
    addresses: tuple[str, ...]

    @property
    def upstream(self) -> str:
        return f"{self.name}:{WEB_PORT}"


@dataclass(frozen=True)
class Project:
    """The compose project this deployer belongs to, exactly as the operator started it: read from
    the labels compose put on the deployer's own container."""

    name: str
    root: str
    config_files: tuple[str, ...]
    env_files: tuple[str, ...]

    @classmethod
    def of_container(cls, container: Container) -> Project:
        labels = container.labels
        try:
            return cls(
                name=labels["com.docker.compose.project"],
                root=labels["com.docker.compose.project.working_dir"],
                config_files=tuple(labels["com.docker.compose.project.config_files"].split(",")),
                env_files=tuple(
                    f for f in labels.get("com.docker.compose.project.environment_file", "").split(",") if f
                ),
            )
        except KeyError as missing:
            raise SystemExit(f"deployer: not started by docker compose (no label {missing})") from None

    def compose(self, *args: str) -> list[str]:
        argv = ["docker-compose", "-p", self.name]
        for env_file in self.env_files:
            argv += ["--env-file", env_file]
        for config_file in self.config_files:
            argv += ["-f", config_file]
        return [*argv, *args]


class Stack(Protocol):
    """What the deployer asks of the running stack (ComposeStack; a fake in the unit tests)."""

    @property
    def root(self) -> str: ...
    def compose(self, log: Log, args: list[str], timeout: float, env: dict[str, str]) -> None: ...
    def web_containers(self) -> list[Web]: ...
    def restart_jobs(self, log: Log, env: dict[str, str], timeout: float) -> None: ...
    def start_web(self, log: Log, count: int, env: dict[str, str], timeout: float) -> list[Web]: ...
    def state(self, web: Web) -> tuple[str, str]: ...
    def log_tail(self, web: Web, lines: int = 30) -> str: ...
    def stop(self, web: Web, timeout: int) -> None: ...
    def remove(self, web: Web) -> None: ...
    def revision_of_running_web(self) -> str | None: ...
    def point_nginx_at(self, log: Log, upstreams: list[str]) -> None: ...
    def nginx_draining(self) -> int: ...
    def edge_errors_since(self, since: float, addresses: tuple[str, ...]) -> int: ...
    def image_repository(self, web: Web, tag: str) -> str | None: ...
    def remove_image(self, name: str) -> str: ...


# The services that run the web image's background jobs (docker-compose.prod.yml).
JOB_SERVICES = ("worker", "scheduler")


class ComposeStack:
    def __init__(self, client: docker.DockerClient, project: Project):
        self.client = client
        self.project = project

    @property
    def root(self) -> str:
        return self.project.root

    # --- compose ------------------------------------------------------------------------------

    def compose(self, log: Log, args: list[str], timeout: float, env: dict[str, str]) -> None:
        run_command(log, self.project.compose(*args), timeout, env=env)

    def _containers(self, service: str, running_only: bool = True) -> list[Container]:
        """The service's containers that compose made for it: a container run from an image compose
        built carries the image's project and service labels too (a swarm's task of the same image,
        a `docker run`), and a one-off `compose run` serves nothing."""
        labels = [
            f"com.docker.compose.project={self.project.name}",
            f"com.docker.compose.service={service}",
            "com.docker.compose.oneoff=False",
        ]
        found: list[Container] = self.client.containers.list(all=not running_only, filters={"label": labels})
        return found

    @staticmethod
    def _web(container: Container) -> Web:
        networks = container.attrs["NetworkSettings"]["Networks"].values()
        addresses = tuple(n["IPAddress"] for n in networks if n.get("IPAddress"))
        return Web(str(container.id), str(container.name), addresses)

    def web_containers(self) -> list[Web]:
        """The web containers running now."""
        return sorted((self._web(c) for c in self._containers("web")), key=lambda web: web.name)

    def restart_jobs(self, log: Log, env: dict[str, str], timeout: float) -> None:
        """The background jobs' worker and scheduler recreated on the image ``env`` names (each
        finishes its running jobs first, or gives them back); a stack without them is left as it is."""
        services = [service for service in JOB_SERVICES if self._containers(service)]
        if not services:
            log.write("no worker or scheduler runs here")
            return
        self.compose(log, ["up", "--detach", "--no-deps", *services], timeout, env)

    def start_web(self, log: Log, count: int, env: dict[str, str], timeout: float) -> list[Web]:
        """``count`` new web containers beside those running (compose: scale up, recreate nothing)."""
        before = {c.id for c in self._containers("web", running_only=False)}
        scale = len(self._containers("web")) + count
        self.compose(
            log, ["up", "--detach", "--no-deps", "--no-recreate", "--scale", f"web={scale}", "web"], timeout, env
        )
        started = [self._web(c) for c in self._containers("web", running_only=False) if c.id not in before]
        if len(started) != count:
            raise StepFailed(f"expected {count} new web container(s), found {len(started)}")
        return sorted(started, key=lambda web: web.name)

    def state(self, web: Web) -> tuple[str, str]:
        """Docker's status (running, exited...) and health (starting, healthy, unhealthy, none)."""
        state = self.client.containers.get(web.id).attrs["State"]
        return state["Status"], state.get("Health", {}).get("Status", "none")

    def log_tail(self, web: Web, lines: int = 30) -> str:
        """What Docker's last health checks said, then the last lines of the container's log."""
        container = self.client.containers.get(web.id)
        checks = container.attrs["State"].get("Health", {}).get("Log", [])[-3:]
        said = [f"health check exit {c.get('ExitCode')}: {(c.get('Output') or '').strip()[-300:]}" for c in checks]
        return "\n".join([*said, container.logs(tail=lines).decode(errors="replace")])

    def stop(self, web: Web, timeout: int) -> None:
        container = self.client.containers.get(web.id)
        container.stop(timeout=timeout)
        container.remove()

    def remove(self, web: Web) -> None:
        with contextlib.suppress(docker.errors.NotFound):
            self.client.containers.get(web.id).remove(force=True)

    def revision_of_running_web(self) -> str | None:
        """The commit the running web containers were built from (their APP_REVISION), if they say."""
        for container in self._containers("web"):
            env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"] if "=" in item)
            if env.get("APP_REVISION"):
                return str(env["APP_REVISION"])
        return None

    # --- nginx --------------------------------------------------------------------------------

    def _nginx(self) -> Container:
        found = self._containers("nginx")
        if not found:
            raise StepFailed("no running nginx in the project")
        return found[0]

    def point_nginx_at(self, log: Log, upstreams: list[str]) -> None:
        """Send new requests to ``upstreams`` (graceful reload: nginx's old workers finish theirs).
        Raises when nginx refused the change or did not apply it in time."""
        result = self._nginx().exec_run(["edge-upstream.sh", "--reload", *upstreams])
        log.write(cast(bytes, result.output).decode(errors="replace"))  # stream=False: bytes
        if result.exit_code != 0:
            raise StepFailed(f"nginx did not take upstream {' '.join(upstreams)} (exit {result.exit_code})")

    def nginx_draining(self) -> int:
        """How many of nginx's old workers are still finishing requests they took before a reload."""
        # demux=True: (stdout, stderr), each bytes or None
        output = cast(
            tuple[bytes | None, bytes | None],
            self._nginx().exec_run(["edge-upstream.sh", "--draining"], demux=True).output,
        )
        return int((output[0] or b"0").strip() or 0)

    def edge_errors_since(self, since: float, addresses: tuple[str, ...]) -> int:
        """5xx answers nginx logged since ``since`` (a Unix time) for requests that one of
        ``addresses`` answered, or failed to; 503 excepted (a dependency's outage, not the code's)."""
        errors = 0
        logs = self._nginx().logs(since=int(since), stderr=False)
        for line in logs.decode(errors="replace").splitlines():
            match = EDGE_LOG_LINE.search(line)
            if not match or not match["status"].startswith("5") or match["status"] == "503":
                continue
            answered_by = {upstream.strip().rsplit(":", 1)[0] for upstream in re.split(r"[,:] ", match["upstreams"])}
            if answered_by & set(addresses):
                errors += 1
        return errors

    # --- images -------------------------------------------------------------------------------

    def image_repository(self, web: Web, tag: str) -> str | None:
        """The repository of ``web``'s image tagged ``tag`` (flask-stack/web), if it has that tag."""
        image = self.client.containers.get(web.id).image
        tags = image.tags if image is not None else []
        own = next((t for t in tags if t.endswith(f":{tag}")), None)
        return own.rsplit(":", 1)[0] if own else None

    def remove_image(self, name: str) -> str:
        return remove_image(self.client, name)


def remove_image(client: docker.DockerClient, name: str) -> str:
    """Remove the image ``name`` if nothing uses it; what happened, for the step's log."""
    try:
        client.images.remove(name)  # a tag shared with a kept image only loses that tag
    except docker.errors.ImageNotFound:
        return f"{name}: already gone"
    except docker.errors.APIError as error:
        return f"kept {name}: {error.explanation or error}"
    return f"removed {name}"
