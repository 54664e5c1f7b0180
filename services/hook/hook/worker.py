"""The deployer: the only part with Docker access. It never reads internet input, only the ledger
rows the receiver wrote (and re-checks the commit id's form before handing it to git).

One deploy at a time, each a list of steps with timeouts and kept output:

  fetch     the exact commit, which must be on the configured branch
  checkout  that commit, cleanly (git-ignored files such as .env.d/.env.production are kept)
  build     the web image, tagged with the commit
  migrate   `flask deploy` in a one-off container of the new image
  start     a new web container beside the old one (compose --scale, --no-recreate)
  health    wait until Docker reports the new container healthy
  switch    nginx sends new requests to it (graceful reload; old workers finish theirs)
  drain     wait for nginx's old workers, then stop the old container gracefully
  record    the commit is live; WEB_TAG in .env, so `make prod` keeps this image
  prune     remove the web images of older deploys (the last DEPLOY_KEEP_IMAGES live ones stay)

If the new container is not healthy in time it is removed and the old one never stopped serving.
The deployer restarts neither itself nor anything but web (nginx only reloads).
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import docker

from .config import Hook, load_hooks
from .deploys import COMMIT_ID, Ledger
from .steps import StepFailed, StepLog, run_command

DEPLOY_KEY = "/run/secrets/deploy-key"
KNOWN_HOSTS = "/var/lib/hook/known_hosts"
log = logging.getLogger("hook.deployer")


@dataclass(frozen=True)
class Settings:
    remote: str
    fetch_timeout: float
    build_timeout: float
    migrate_timeout: float
    health_timeout: float
    drain_timeout: float
    stop_timeout: int
    poll_interval: float
    keep_images: int

    @classmethod
    def from_environ(cls, environ) -> Settings:
        def seconds(name, default):
            return float(environ.get(name) or default)

        return cls(
            remote=environ.get("DEPLOY_GIT_REMOTE") or "origin",
            fetch_timeout=seconds("DEPLOY_FETCH_TIMEOUT", 120),
            build_timeout=seconds("DEPLOY_BUILD_TIMEOUT", 900),
            migrate_timeout=seconds("DEPLOY_MIGRATE_TIMEOUT", 300),
            health_timeout=seconds("DEPLOY_HEALTH_TIMEOUT", 120),
            drain_timeout=seconds("DEPLOY_DRAIN_TIMEOUT", 40),
            stop_timeout=int(seconds("DEPLOY_STOP_TIMEOUT", 30)),
            poll_interval=seconds("DEPLOY_POLL_INTERVAL", 1),
            keep_images=int(environ.get("DEPLOY_KEEP_IMAGES") or 3),
        )


@dataclass(frozen=True)
class Project:
    """The compose project this deployer belongs to, exactly as the operator started it: read from
    the labels compose put on the deployer's own container."""

    name: str
    root: str
    config_files: tuple[str, ...]
    env_files: tuple[str, ...]

    @classmethod
    def of_this_container(cls, client) -> Project:
        labels = client.containers.get(socket.gethostname()).labels
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

    def containers(self, client, service: str, running_only=True):
        return client.containers.list(
            all=not running_only,
            filters={"label": [f"com.docker.compose.project={self.name}", f"com.docker.compose.service={service}"]},
        )


class Deployment:
    def __init__(self, ledger: Ledger, deploy, hook: Hook, project: Project, client, settings: Settings):
        self.ledger = ledger
        self.deploy = deploy
        self.hook = hook
        self.project = project
        self.client = client
        self.settings = settings
        self.sha = deploy["sha"]
        self.new_container = None
        self.old_containers: list = []
        self.switched = False

    def compose_env(self) -> dict:
        # The env files carry the project's settings; only the image tag and revision are ours.
        home = "/tmp"  # noqa: S108 - a private tmpfs in the deployer's read-only container
        return {"PATH": os.environ["PATH"], "HOME": home, "WEB_TAG": self.sha, "APP_REVISION": self.sha}

    def git_env(self) -> dict:
        """git over SSH with the mounted deploy key, if there is one; the host key is trusted on first
        use and kept with the ledger (pin it beforehand by writing that known_hosts file)."""
        env = {"PATH": os.environ["PATH"], "HOME": "/tmp"}  # noqa: S108 - as above
        key = Path(DEPLOY_KEY)
        if key.exists() and key.stat().st_size > 0:
            env["GIT_SSH_COMMAND"] = (
                f"ssh -i {DEPLOY_KEY} -o IdentitiesOnly=yes -o StrictHostKeyChecking=accept-new "
                f"-o UserKnownHostsFile={KNOWN_HOSTS}"
            )
        return env

    def step(self, name: str, action) -> None:
        position = self.ledger.start_step(self.deploy["id"], name)
        step_log = StepLog(self.ledger, self.deploy["id"], position)
        try:
            action(step_log)
        except StepFailed as failure:
            step_log.write(f"FAILED: {failure}")
            self.ledger.finish_step(self.deploy["id"], position, False, step_log.text())
            raise
        except Exception as error:
            step_log.write(f"FAILED: {type(error).__name__}: {error}")
            self.ledger.finish_step(self.deploy["id"], position, False, step_log.text())
            raise StepFailed(f"{name}: {type(error).__name__}: {error}") from error
        self.ledger.finish_step(self.deploy["id"], position, True, step_log.text())

    def run(self) -> None:
        if not COMMIT_ID.match(self.sha):
            raise StepFailed(f"refusing a malformed commit id {self.sha!r}")
        root = self.project.root
        git = ["git", "-C", root]
        branch = self.hook.branch
        remote_ref = f"{self.settings.remote}/{branch}"

        def fetch(step_log):
            run_command(
                step_log,
                [*git, "fetch", "--no-tags", self.settings.remote, f"+refs/heads/{branch}:refs/remotes/{remote_ref}"],
                self.settings.fetch_timeout,
                env=self.git_env(),
            )
            if run_command(step_log, [*git, "cat-file", "-e", f"{self.sha}^{{commit}}"], 30, check=False) != 0:
                raise StepFailed(f"commit {self.sha[:12]} is not in {self.settings.remote}")
            if run_command(step_log, [*git, "merge-base", "--is-ancestor", self.sha, remote_ref], 30, check=False):
                raise StepFailed(f"commit {self.sha[:12]} is not on branch {branch}")

        def checkout(step_log):
            run_command(step_log, [*git, "checkout", "--force", "--detach", self.sha], 60)
            run_command(step_log, [*git, "clean", "-d", "--force"], 60)  # ignored files (secrets, .env) stay

        self.step("fetch", fetch)
        self.step("checkout", checkout)
        if self.hook.command != "deploy":
            self.step(
                "command",
                lambda step_log: run_command(
                    step_log,
                    list(self.hook.command),
                    self.settings.build_timeout,
                    cwd=root,
                    env={**self.compose_env(), "DEPLOY_SHA": self.sha, "DEPLOY_REF": self.deploy["ref"]},
                ),
            )
            return
        self.step(
            "build",
            lambda step_log: run_command(
                step_log, self.project.compose("build", "web"), self.settings.build_timeout, env=self.compose_env()
            ),
        )
        self.step(
            "migrate",
            lambda step_log: run_command(
                step_log,
                self.project.compose("run", "--rm", "--no-deps", "-T", "migrate"),
                self.settings.migrate_timeout,
                env=self.compose_env(),
            ),
        )
        self.step("start", self.start_new_web)
        self.step("health", self.wait_until_healthy)
        self.step("switch", self.switch_traffic)
        self.step("drain", self.drain_and_stop_old)
        self.step("record", self.record_live)
        self.step("prune", self.prune_old_images)

    # --- the switch ---------------------------------------------------------------------------

    def start_new_web(self, step_log):
        self.old_containers = self.project.containers(self.client, "web")
        step_log.write(f"serving now: {', '.join(c.name for c in self.old_containers) or 'nothing'}")
        before = {c.id for c in self.project.containers(self.client, "web", running_only=False)}
        scale = len(self.old_containers) + 1
        run_command(
            step_log,
            self.project.compose("up", "--detach", "--no-deps", "--no-recreate", "--scale", f"web={scale}", "web"),
            120,
            env=self.compose_env(),
        )
        started = [c for c in self.project.containers(self.client, "web", running_only=False) if c.id not in before]
        if len(started) != 1:
            raise StepFailed(f"expected one new web container, found {len(started)}")
        self.new_container = started[0]
        step_log.write(f"started {self.new_container.name} from {self.new_container.image.tags}")

    def wait_until_healthy(self, step_log):
        deadline = time.monotonic() + self.settings.health_timeout
        last = None
        while time.monotonic() < deadline:
            self.new_container.reload()
            state = self.new_container.attrs["State"]
            health = state.get("Health", {}).get("Status", "none")
            if (state["Status"], health) != last:
                step_log.write(f"{self.new_container.name}: {state['Status']}, health {health}")
                last = (state["Status"], health)
            if health == "healthy":
                return
            if state["Status"] in {"exited", "dead"} or health == "unhealthy":
                break
            time.sleep(1)
        tail = self.new_container.logs(tail=30).decode(errors="replace")
        step_log.write("last lines of its log:\n" + tail)
        raise StepFailed(
            f"{self.new_container.name} was not healthy within {self.settings.health_timeout:.0f}s "
            f"(last state: {last[0] if last else '?'}, health {last[1] if last else '?'})"
        )

    def nginx(self):
        found = self.project.containers(self.client, "nginx")
        if not found:
            raise StepFailed("no running nginx in the project")
        return found[0]

    def point_nginx_at(self, step_log, upstream: str) -> None:
        result = self.nginx().exec_run(["edge-upstream.sh", "--reload", upstream])
        step_log.write(result.output.decode(errors="replace"))
        if result.exit_code != 0:
            raise StepFailed(f"nginx refused upstream {upstream}")

    def switch_traffic(self, step_log):
        self.point_nginx_at(step_log, f"{self.new_container.name}:8000")
        self.switched = True

    def drain_and_stop_old(self, step_log):
        deadline = time.monotonic() + self.settings.drain_timeout
        while time.monotonic() < deadline:
            stdout, _ = self.nginx().exec_run(["edge-upstream.sh", "--draining"], demux=True).output
            draining = int((stdout or b"0").strip() or 0)
            if draining == 0:
                break
            time.sleep(0.5)
        step_log.write("nginx's old workers have finished their requests")
        for old in self.old_containers:
            step_log.write(f"stopping {old.name} (up to {self.settings.stop_timeout}s to finish requests)")
            old.stop(timeout=self.settings.stop_timeout)
            old.remove()
        # Back to the service name, which now resolves to the new container only.
        self.point_nginx_at(step_log, "web:8000")

    def record_live(self, step_log):
        env_file = Path(self.project.root) / ".env"
        lines = env_file.read_text().splitlines() if env_file.exists() else []
        kept = [line for line in lines if not line.startswith(("WEB_TAG=", "APP_REVISION=", "# deployed by the hook"))]
        kept += ["# deployed by the hook: the live web image", f"WEB_TAG={self.sha}", f"APP_REVISION={self.sha}"]
        env_file.write_text("\n".join(kept) + "\n")
        step_log.write(f"{self.sha} is live; WEB_TAG recorded in {env_file}")

    def prune_old_images(self, step_log):
        # The new version is live by now: nothing here may fail the deploy, so problems are only logged.
        own_tag = next((tag for tag in self.new_container.image.tags if tag.endswith(f":{self.sha}")), None)
        if own_tag is None:
            step_log.write(f"the new image has no tag {self.sha}; nothing pruned")
            return
        repository = own_tag.rsplit(":", 1)[0]
        for sha in self.ledger.images_to_prune(self.sha, self.settings.keep_images):
            name = f"{repository}:{sha}"
            try:
                self.client.images.remove(name)  # a tag shared with a kept image only loses that tag
                step_log.write(f"removed {name}")
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as error:
                step_log.write(f"kept {name}: {error.explanation or error}")

    def undo(self, live_sha: str | None) -> list[str]:
        """After a failure: the old containers keep (or go back to) serving; the tree returns to the live commit."""
        notes = []
        if self.switched and self.old_containers:
            try:
                self.nginx().exec_run(["edge-upstream.sh", "--reload", f"{self.old_containers[0].name}:8000"])
                notes.append(f"nginx back to {self.old_containers[0].name}")
            except docker.errors.APIError as error:
                notes.append(f"could not point nginx back: {error}")
        if self.new_container is not None:
            try:
                self.new_container.remove(force=True)
                notes.append(f"removed {self.new_container.name}")
            except docker.errors.APIError as error:
                notes.append(f"could not remove {self.new_container.name}: {error}")
        if live_sha and COMMIT_ID.match(live_sha):
            restored = subprocess.run(
                ["git", "-C", self.project.root, "checkout", "--force", "--detach", live_sha],
                capture_output=True,
                timeout=60,
            )
            notes.append(
                f"working tree back at {live_sha[:12]}"
                if restored.returncode == 0
                else "could not restore the working tree"
            )
        return notes


def live_sha_of_running_web(project: Project, client) -> str | None:
    """The commit the running web container was built from (its APP_REVISION), if it says."""
    for container in project.containers(client, "web"):
        env = dict(item.split("=", 1) for item in container.attrs["Config"]["Env"] if "=" in item)
        if COMMIT_ID.match(env.get("APP_REVISION", "")):
            return env["APP_REVISION"]
    return None


def heartbeat_path(environ) -> Path:
    """Touched by the deployer's loop between deploys; its age is the deployer's healthcheck."""
    return Path(environ.get("HOOK_HEARTBEAT", "/var/lib/hook/deployer.heartbeat"))


def learn_live_commit(ledger: Ledger, project: Project, client) -> None:
    """Until a deploy records one, the live commit is the one the running web container says."""
    if ledger.live_sha() is not None:
        return
    found = live_sha_of_running_web(project, client)
    if found:
        ledger.set_live(found)
        log.info("live commit, from the running web container: %s", found)


def work(environ=None) -> None:
    environ = os.environ if environ is None else environ
    logging.basicConfig(
        level=environ.get("LOG_LEVEL", "INFO"), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    hooks = load_hooks(environ, with_secrets=False)
    settings = Settings.from_environ(environ)
    ledger = Ledger.from_environ(environ)
    ledger.create()
    heartbeat = heartbeat_path(environ)
    client = docker.from_env()
    project = Project.of_this_container(client)
    if environ.get("DEPLOY_ROOT") != project.root:
        raise SystemExit(
            f"deployer: the repository must be mounted at its own path: DEPLOY_ROOT is "
            f"{environ.get('DEPLOY_ROOT')!r} but the project lives at {project.root!r} (run `make prod`)"
        )
    for deploy_id in ledger.interrupt_running("interrupted: the deployer stopped during this deploy"):
        log.warning("deploy %s was left running by a previous deployer; marked failed", deploy_id)
    log.info("deployer ready: project %s at %s, hooks %s", project.name, project.root, ", ".join(hooks))
    while True:
        heartbeat.touch()
        learn_live_commit(ledger, project, client)
        deploy = ledger.claim_next()
        if deploy is None:
            time.sleep(settings.poll_interval)
            continue
        deploy_one(ledger, deploy, hooks, project, client, settings)


def deploy_one(ledger: Ledger, deploy, hooks: dict[str, Hook], project: Project, client, settings: Settings) -> None:
    started = time.monotonic()
    hook = hooks.get(deploy["hook_id"])
    log.info("deploy %s: %s of %s (%s)", deploy["id"], deploy["kind"], deploy["sha"], deploy["hook_id"])
    if hook is None:
        ledger.finish(deploy["id"], False, f"hook {deploy['hook_id']!r} is no longer configured")
        return
    live_before = ledger.live_sha()
    deployment = Deployment(ledger, deploy, hook, project, client, settings)
    try:
        deployment.run()
    except StepFailed as failure:
        notes = deployment.undo(live_before)
        reason = f"{failure}; " + "; ".join(notes) if notes else str(failure)
        ledger.finish(deploy["id"], False, reason)
        log.warning("deploy %s failed after %.1fs: %s", deploy["id"], time.monotonic() - started, reason)
        return
    ledger.finish(deploy["id"], True, f"live after {time.monotonic() - started:.1f}s", live_sha=deploy["sha"])
    log.info("deploy %s succeeded in %.1fs: %s is live", deploy["id"], time.monotonic() - started, deploy["sha"])
