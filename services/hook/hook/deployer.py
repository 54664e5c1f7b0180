"""The deployer: the only part with Docker access. It never reads internet input, only the ledger
rows the receiver wrote (and re-checks the commit id's form before handing it to git).

One deploy at a time, in three phases. The invariant: whatever fails, at least one healthy web
version serves, and nginx points at it.

  PREPARE  fetch     the exact commit; a push must descend from the live commit (or be the branch's
                     tip): going back is a rollback, never a push
           checkout  that commit (git-ignored files such as .env.d/.env.production stay)
           build     the web image, tagged with the commit
           migrate   `flask deploy` in a one-off container of the new image
           start     as many new web containers as serve now, beside them
           health    until Docker reports every new one healthy
    A failure here is undone: the new containers go; nginx never left the old ones.

  SWITCH   switch    nginx sends new requests to the new containers (graceful reload)
           verify    for DEPLOY_VERIFY_SECONDS the new ones must stay healthy and give fewer than
                     DEPLOY_VERIFY_MAX_5XX 5xx answers (nginx's log); the old ones keep running
    A failure here switches back: nginx to the old containers (still running), then the new go.

  SETTLE   drain     nginx's old workers finish; the old containers stop gracefully   <- the point
           jobs      the worker and the scheduler recreated on the new image            of no return
           record    the commit is live: WEB_TAG in .env, its ancestry for the receiver
           prune     web images of older deploys go (the last DEPLOY_KEEP_IMAGES live ones stay)
    A failure here is reported with the deploy; nothing that serves is removed.

On Docker Swarm (`make swarm`) Swarm itself replaces web's tasks, health-gated and start-first,
and rolls its update back when a new task fails (compose/swarm.yml); the deployer drives it:

  PREPARE  fetch, checkout, build as above; push  the image to the registry every node pulls from
  ROLL     roll      web's image changed (`docker service update --image`), the update followed to
                     its end; Swarm's own rollback is the switch back
  SETTLE   jobs      the worker and scheduler services onto the new image (Swarm updates them);
           record, prune as above

On a host without Docker (deploy/systemd, DEPLOY_TARGET=systemd; the layout in hook/host.py) the
live release keeps serving from `current` until the switch:

  PREPARE  fetch     as above
           unpack    the commit's tree into a release directory of its own (kept: a rollback)
           venv      its virtualenv from the pinned requirements (made once per set of pins)
           migrate   `flask deploy` with the API's settings
           check     the release's own gunicorn, on a private socket, must answer /api/readyz
    A failure here removes the new release; `current` never moved.
  SWITCH   switch    `current` to the new release; gunicorn reloaded (HUP: new workers, the old
                     finish their requests), or restarted when its master's own code changed
           verify    every answer comes from the new commit, then /api/readyz for
                     DEPLOY_VERIFY_SECONDS (fewer than DEPLOY_VERIFY_MAX_5XX failures)
    A failure here switches back: `current` to the old release, gunicorn told again.
  SETTLE   record    as above (the ancestry; the live release is `current`)
           prune     releases beyond DEPLOY_KEEP_RELEASES (never the live or the previous one),
                     and virtualenvs no release uses
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, Protocol, TypeVar

import docker

from .hooks import Hook
from .host import HostStack
from .ledger import COMMIT_ID, Ledger, StepLog
from .logs import configure_logging
from .repository import Repository
from .settings import DeploySettings, HookSettings
from .stack import ComposeStack, Project, Stack, Web
from .steps import StepFailed, run_command, until
from .swarm import STACK_LABEL, WEB_REPOSITORY, SwarmStack, Update

PREPARE = ("fetch", "checkout", "build", "migrate", "start", "health")
SWITCH = ("switch", "verify")
SETTLE = ("drain", "jobs", "record", "prune")
# On Swarm (migrations run as each web task starts: compose/swarm.yml).
SWARM_PREPARE = ("fetch", "checkout", "build", "push")
SWARM_SWITCH = ("roll",)
SWARM_SETTLE = ("jobs", "record", "prune")
# On a host without Docker.
HOST_PREPARE = ("fetch", "unpack", "venv", "migrate", "check")
HOST_SWITCH = ("switch", "verify")
HOST_SETTLE = ("record", "prune")
# Answers in a row from the new commit that show every worker has it (the old finish and go).
SETTLED_ANSWERS = 5
# A host's gunicorn answers on a local socket in milliseconds: asked this often (seconds) while it
# starts or reloads, so a switch is seen as soon as it happens.
ASK_GUNICORN_EVERY = 0.2
# A hook with a command of its own instead of the built-in deploy.
COMMAND = ("fetch", "checkout", "command")

log = logging.getLogger("hook.deployer")


class DeployRefused(StepFailed):
    """The commit may not be deployed by a push (it would go backwards)."""


@dataclass(frozen=True)
class Result:
    status: str  # one of ledger.FINISHED
    reason: str


class Rooted(Protocol):
    @property
    def root(self) -> str: ...


S = TypeVar("S", bound=Rooted)
T = TypeVar("T")


class Release(Generic[S]):
    """What every deploy does, whatever runs the stack: make sure the commit may go live, check it
    out, then the phases of the subclass (PREPARE, SWITCH, SETTLE), and record what went live."""

    prepare: tuple[str, ...] = ()
    switch_phase: tuple[str, ...] = ()
    settle: tuple[str, ...] = ()

    def __init__(
        self,
        ledger: Ledger,
        deploy: sqlite3.Row,
        hook: Hook,
        repository: Repository,
        stack: S,
        settings: DeploySettings,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.ledger = ledger
        self.deploy = deploy
        self.hook = hook
        self.repository = repository
        self.stack = stack
        self.root = stack.root
        self.settings = settings
        self.clock = clock
        self.sleep = sleep
        self.sha = deploy["sha"]
        self.live_before = ledger.live_sha()
        self.notes: list[str] = []
        self.begin()

    def begin(self) -> None:
        """What a kind of deploy keeps track of, from the start."""

    # --- running the phases -------------------------------------------------------------------

    def run(self) -> Result:
        started = self.clock()
        if not COMMIT_ID.fullmatch(self.sha):
            return Result("failed", f"refusing a malformed commit id {self.sha!r}")
        custom_command = self.hook.command != "deploy"
        try:
            for name in COMMAND if custom_command else self.prepare:
                self.step(name)
        except DeployRefused as refusal:
            return Result("refused", f"{refusal}; {self.repository.restore(self.live_before)}")
        except StepFailed as failure:
            return Result("failed", "; ".join([str(failure), *self.undo_prepare()]))
        if custom_command:
            return Result("succeeded", f"live after {self.clock() - started:.1f}s")
        try:
            for name in self.switch_phase:
                self.step(name)
        except StepFailed as failure:
            return self.switch_back(failure)
        warnings = []
        for name in self.settle:
            try:
                self.step(name)
            except StepFailed as failure:
                warnings.append(str(failure))  # the new version serves: report, undo nothing
        return Result("succeeded", "; ".join([f"live after {self.clock() - started:.1f}s", *self.notes, *warnings]))

    def step(self, name: str) -> None:
        """Run the step ``name`` in the ledger; any failure becomes a StepFailed naming the step."""
        try:
            with self.ledger.step(self.deploy["id"], name) as step_log:
                getattr(self, name)(step_log)
        except DeployRefused:
            raise
        except StepFailed as failure:
            raise type(failure)(f"{name}: {failure}") from failure
        except Exception as error:
            raise StepFailed(f"{name}: {type(error).__name__}: {error}") from error

    def undo_prepare(self) -> list[str]:
        """Before the switch the live version never stopped serving: the working tree goes back."""
        with self.ledger.step(self.deploy["id"], "undo") as step_log:
            restored = self.repository.restore(self.live_before)
            step_log.write(restored)
        return [restored]

    def switch_back(self, failure: StepFailed) -> Result:
        raise NotImplementedError

    def until(self, check: Callable[[], T], timeout: float, interval: float | None = None) -> T:
        """``steps.until`` on this deploy's clock, every poll interval unless told."""
        interval = self.settings.poll_interval if interval is None else interval
        return until(check, timeout, interval, self.clock, self.sleep)

    def watch(self, check: Callable[[], object], window: float) -> None:
        """Call ``check`` every poll interval for ``window`` seconds; it raises StepFailed to stop."""

        def keep_watching() -> bool:
            check()
            return False  # never done early: the whole window is watched

        self.until(keep_watching, window)

    def compose_env(self) -> dict[str, str]:
        # The env files carry the project's settings; only the image tag and revision are ours.
        home = "/tmp"  # noqa: S108 - a private tmpfs in the deployer's read-only container
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "WEB_TAG": self.sha,
            "APP_REVISION": self.sha,
        }

    def fetch(self, step_log: StepLog) -> None:
        tip = self.repository.fetch(step_log)
        if not self.repository.has_commit(self.sha):
            raise StepFailed(f"commit {self.sha[:12]} is not in {self.repository.remote}")
        if not self.repository.is_ancestor(self.sha, self.repository.remote_ref):
            raise StepFailed(f"commit {self.sha[:12]} is not on branch {self.hook.branch}")
        live = self.live_before
        if (
            self.deploy["kind"] == "push"
            and live
            and self.sha != tip
            and not self.repository.is_ancestor(live, self.sha)
        ):
            raise DeployRefused(
                f"{self.sha[:12]} does not descend from the live commit {live[:12]} and is not the tip of "
                f"{self.hook.branch}: a push only moves forward (to go back: make rollback SHA={self.sha[:12]})"
            )
        step_log.write(f"{self.sha[:12]} is on {self.hook.branch} (tip {tip[:12]})")

    def checkout(self, step_log: StepLog) -> None:
        self.repository.checkout(step_log, self.sha)

    def command(self, step_log: StepLog) -> None:
        env = {**self.compose_env(), "DEPLOY_SHA": self.sha, "DEPLOY_REF": self.deploy["ref"]}
        run_command(step_log, list(self.hook.command), self.settings.build_timeout, cwd=self.root, env=env)

    def record(self, step_log: StepLog) -> None:
        env_file = Path(self.root) / ".env"
        lines = env_file.read_text().splitlines() if env_file.exists() else []
        kept = [line for line in lines if not line.startswith(("WEB_TAG=", "APP_REVISION=", "# deployed by the hook"))]
        kept += ["# deployed by the hook: the live web image", f"WEB_TAG={self.sha}", f"APP_REVISION={self.sha}"]
        env_file.write_text("\n".join(kept) + "\n")
        step_log.write(f"{self.sha} is live; WEB_TAG recorded in {env_file}")
        self.ledger.set_live_ancestry(self.repository.ancestors(self.sha))


class Deployment(Release[Stack]):
    """A deploy on the stack Compose runs (`make prod`): new web containers beside the old, nginx
    switched to them, the old drained (the phases at the top)."""

    prepare, switch_phase, settle = PREPARE, SWITCH, SETTLE

    def begin(self) -> None:
        self.old: list[Web] = []
        self.new: list[Web] = []
        self.switched_at: float | None = None  # wall-clock time nginx was asked to switch
        self.switched = False  # nginx took the new containers: a failure now is a rollback

    def undo_prepare(self) -> list[str]:
        """Before the switch nginx never left the old containers: the new ones can simply go."""
        with self.ledger.step(self.deploy["id"], "undo") as step_log:
            for web in self.new:
                self.stack.remove(web)
                step_log.write(f"removed {web.name}")
            restored = self.repository.restore(self.live_before)
            step_log.write(restored)
        return [f"removed {', '.join(w.name for w in self.new)}" if self.new else "nothing was started", restored]

    def switch_back(self, failure: StepFailed) -> Result:
        """After the switch: nginx back to the old containers (still running), and only then the new
        ones go. If nginx cannot be pointed back, both versions are left running."""
        if not self.old:
            return Result("failed", f"{failure}; nothing served before, so the new version stays")
        try:
            with self.ledger.step(self.deploy["id"], "switch back") as step_log:
                self.stack.point_nginx_at(step_log, [web.upstream for web in self.old])
                self.wait_for_nginx_to_drain(step_log)
                for web in self.new:
                    self.stack.remove(web)
                    step_log.write(f"removed {web.name}")
                self.stack.point_nginx_at(step_log, ["web:8000"])  # the service name: the old ones again
                step_log.write(self.repository.restore(self.live_before))
        except Exception as error:  # noqa: BLE001 - reported; nothing more is removed
            return Result("failed", f"{failure}; could not switch back ({error}): both versions left running")
        back = f"switched back to {', '.join(w.name for w in self.old)}"
        return Result("rolled_back" if self.switched else "failed", f"{failure}; {back}")

    def wait_for_nginx_to_drain(self, step_log: StepLog) -> bool:
        """Until nginx's old workers have finished their requests; False when it took too long."""
        if not self.until(lambda: self.stack.nginx_draining() == 0, self.settings.drain_timeout, 0.5):
            busy = self.stack.nginx_draining()
            step_log.write(f"drain timed out after {self.settings.drain_timeout:.0f}s: {busy} still busy")
            return False
        step_log.write("nginx's old workers have finished their requests")
        return True

    # --- PREPARE --------------------------------------------------------------------------------

    def build(self, step_log: StepLog) -> None:
        self.stack.compose(step_log, ["build", "web"], self.settings.build_timeout, self.compose_env())

    def migrate(self, step_log: StepLog) -> None:
        args = ["run", "--rm", "--no-deps", "-T", "migrate"]
        self.stack.compose(step_log, args, self.settings.migrate_timeout, self.compose_env())

    def start(self, step_log: StepLog) -> None:
        self.old = self.stack.web_containers()
        step_log.write(f"serving now: {', '.join(w.name for w in self.old) or 'nothing'}")
        # As many as serve now: a stack scaled to N stays at N.
        self.new = self.stack.start_web(
            step_log, max(1, len(self.old)), self.compose_env(), self.settings.start_timeout
        )
        step_log.write(f"started {', '.join(w.name for w in self.new)}")

    def health(self, step_log: StepLog) -> None:
        waiting = list(self.new)
        seen: dict[str, tuple[str, str]] = {}

        def all_healthy() -> bool:
            for web in list(waiting):
                state = self.stack.state(web)
                if seen.get(web.name) != state:
                    step_log.write(f"{web.name}: {state[0]}, health {state[1]}")
                    seen[web.name] = state
                if state[1] == "healthy":
                    waiting.remove(web)
                elif state[0] in {"exited", "dead"} or state[1] == "unhealthy":
                    step_log.write(f"last lines of {web.name}'s log:\n{self.stack.log_tail(web)}")
                    raise StepFailed(f"{web.name} is {state[0]}, health {state[1]}")
            return not waiting

        if not self.until(all_healthy, self.settings.health_timeout):
            web = waiting[0]
            step_log.write(f"last lines of {web.name}'s log:\n{self.stack.log_tail(web)}")
            state = seen.get(web.name, ("?", "?"))
            raise StepFailed(
                f"{web.name} was not healthy within {self.settings.health_timeout:.0f}s "
                f"(last state: {state[0]}, health {state[1]})"
            )

    # --- SWITCH ---------------------------------------------------------------------------------

    def switch(self, step_log: StepLog) -> None:
        self.switched_at = time.time()
        self.stack.point_nginx_at(step_log, [web.upstream for web in self.new])
        self.switched = True

    def verify(self, step_log: StepLog) -> None:
        window = self.settings.verify_seconds
        step_log.write(f"watching {', '.join(w.name for w in self.new)} for {window:.0f}s")
        addresses = tuple(address for web in self.new for address in web.addresses)
        errors = 0

        def still_serving() -> None:
            nonlocal errors
            for web in self.new:
                status, health = self.stack.state(web)
                if status != "running" or health == "unhealthy":
                    step_log.write(f"last lines of {web.name}'s log:\n{self.stack.log_tail(web)}")
                    raise StepFailed(f"{web.name} became {status}, health {health}, after the switch")
            errors = self.stack.edge_errors_since(self.switched_at or time.time(), addresses)
            if errors > self.settings.verify_max_5xx:
                raise StepFailed(f"the new version gave {errors} 5xx answers after the switch")

        self.watch(still_serving, window)
        step_log.write(f"healthy for {window:.0f}s, {errors} 5xx answer(s)")

    # --- SETTLE ---------------------------------------------------------------------------------

    def drain(self, step_log: StepLog) -> None:
        if not self.wait_for_nginx_to_drain(step_log):
            self.notes.append("drain timed out: nginx still had requests on the old version when it stopped")
        for web in self.old:
            step_log.write(f"stopping {web.name} (up to {self.settings.stop_timeout}s to finish its requests)")
        with ThreadPoolExecutor(max_workers=max(1, len(self.old))) as stopping:  # side by side, not in turn
            list(stopping.map(lambda web: self.stack.stop(web, self.settings.stop_timeout), self.old))
        # Back to the service name, which now resolves to the new containers only.
        self.stack.point_nginx_at(step_log, ["web:8000"])

    def jobs(self, step_log: StepLog) -> None:
        """The worker and the scheduler onto the new version, once the old web has stopped."""
        self.stack.restart_jobs(step_log, self.compose_env(), self.settings.start_timeout)

    def prune(self, step_log: StepLog) -> None:
        repository = self.stack.image_repository(self.new[0], self.sha) if self.new else None
        if repository is None:
            step_log.write(f"the new image has no tag {self.sha}; nothing pruned")
            return
        for sha in self.ledger.images_to_prune(self.sha, self.settings.keep_images):
            step_log.write(self.stack.remove_image(f"{repository}:{sha}"))


class SwarmDeployment(Release[SwarmStack]):
    """A deploy on the stack Swarm runs (`make swarm`): Swarm replaces web's tasks itself, and rolls
    its update back by itself (the Swarm phases at the top)."""

    prepare, switch_phase, settle = SWARM_PREPARE, SWARM_SWITCH, SWARM_SETTLE

    def begin(self) -> None:
        self.previous_image = ""
        self.update: Update | None = None

    def build(self, step_log: StepLog) -> None:
        self.stack.compose(step_log, ["build", "web"], self.settings.build_timeout, self.compose_env())

    def push(self, step_log: StepLog) -> None:
        self.stack.push(step_log, self.sha)

    def roll(self, step_log: StepLog) -> None:
        self.previous_image = self.stack.web_image()
        step_log.write(f"serving now: {self.previous_image}")
        self.update = self.stack.roll(step_log, self.stack.image_name(self.sha), self.settings.roll_timeout)
        if self.update.state != "completed":
            raise StepFailed(f"Swarm's update ended {self.update.state}: {self.update.message}")

    def jobs(self, step_log: StepLog) -> None:
        self.stack.update_jobs(step_log, self.stack.image_name(self.sha))

    def switch_back(self, failure: StepFailed) -> Result:
        """Swarm rolls a failed update back by itself (failure_action: rollback): report what it did."""
        restored = self.repository.restore(self.live_before)
        state = self.update.state if self.update else ""
        if state == "rollback_completed":
            return Result("rolled_back", f"{failure}; Swarm put {self.previous_image} back; {restored}")
        return Result("failed", f"{failure}; web may run both versions until Swarm's update ends; {restored}")

    def prune(self, step_log: StepLog) -> None:
        for sha in self.ledger.images_to_prune(self.sha, self.settings.keep_images):
            for name in {f"{WEB_REPOSITORY}:{sha}", self.stack.image_name(sha)}:
                step_log.write(self.stack.remove_image(name))


class HostDeployment(Release[HostStack]):
    """A deploy on a host without Docker: a release beside the live one, checked on a socket of its
    own, then `current` switched and gunicorn told (the host phases at the top)."""

    prepare, switch_phase, settle = HOST_PREPARE, HOST_SWITCH, HOST_SETTLE

    def begin(self) -> None:
        self.old = self.stack.live_release()
        self.unpacked = False  # this deploy made the release directory (a rollback finds it made)
        self.switched = False

    def undo_prepare(self) -> list[str]:
        with self.ledger.step(self.deploy["id"], "undo") as step_log:
            if self.unpacked:
                self.stack.remove_release(self.sha)
                undone = f"removed release {self.sha[:12]}"
            elif self.stack.release(self.sha).is_dir():
                undone = f"release {self.sha[:12]} was made by an earlier deploy: kept"
            else:
                undone = "no release was made"
            live = f"`current` never left {self.old.name[:12]}" if self.old else "nothing served before"
            step_log.write(f"{undone}; {live}")
        return [undone, live]

    def switch_back(self, failure: StepFailed) -> Result:
        if not self.switched:
            return Result("failed", f"{failure}; `current` was not switched")
        if self.old is None:
            return Result("failed", f"{failure}; nothing served before, so the new version stays")
        old = self.old.name
        try:
            with self.ledger.step(self.deploy["id"], "switch back") as step_log:
                restart = self.stack.needs_restart(self.stack.release(self.sha), self.old)
                self.stack.point_current_at(old)
                step_log.write(f"current -> releases/{old}")
                self.stack.tell_gunicorn(step_log, restart)
                self.wait_for_revision(step_log, old)
        except Exception as error:  # noqa: BLE001 - reported as it is
            return Result("failed", f"{failure}; could not switch back to {old[:12]} ({error})")
        return Result("rolled_back", f"{failure}; switched back to {old[:12]}")

    def wait_for_revision(self, step_log: StepLog, sha: str) -> None:
        answers: list[tuple[int, str]] = []

        def settled() -> bool:
            status, body = self.stack.web.get("/api/healthz")
            answers.append((status, str(body.get("revision", ""))))
            return answers[-SETTLED_ANSWERS:] == [(200, sha)] * SETTLED_ANSWERS

        if not self.until(settled, self.settings.start_timeout, ASK_GUNICORN_EVERY):
            status, revision = answers[-1]
            raise StepFailed(
                f"gunicorn did not answer as {sha[:12]} within {self.settings.start_timeout:.0f}s "
                f"(last answer: status {status or 'none'}, revision {revision[:12] or 'none'})"
            )
        step_log.write(f"every answer comes from {sha[:12]} now")

    # --- PREPARE --------------------------------------------------------------------------------

    def unpack(self, step_log: StepLog) -> None:
        self.unpacked = self.stack.unpack(step_log, self.sha)

    def venv(self, step_log: StepLog) -> None:
        self.stack.venv(step_log, self.sha, self.settings.build_timeout)

    def migrate(self, step_log: StepLog) -> None:
        run_command(
            step_log,
            self.stack.app_command(self.sha, "flask", "--app", "api", "deploy"),
            self.settings.migrate_timeout,
            cwd=self.stack.app_dir(self.sha),
            env=self.stack.app_env(self.sha),
        )

    def check(self, step_log: StepLog) -> None:
        with self.stack.candidate(step_log, self.sha) as candidate:
            ready = self.until(
                lambda: candidate.get("/api/readyz")[0] == 200, self.settings.health_timeout, ASK_GUNICORN_EVERY
            )
            if not ready:
                raise StepFailed(
                    f"release {self.sha[:12]} was not ready within {self.settings.health_timeout:.0f}s on a socket "
                    "of its own"
                )
            step_log.write(f"release {self.sha[:12]} is ready on a socket of its own")

    # --- SWITCH ---------------------------------------------------------------------------------

    def switch(self, step_log: StepLog) -> None:
        restart = self.stack.needs_restart(self.old, self.stack.release(self.sha))
        self.stack.point_current_at(self.sha)
        self.switched = True
        step_log.write(f"current -> releases/{self.sha}")
        self.stack.tell_gunicorn(step_log, restart)

    def verify(self, step_log: StepLog) -> None:
        self.wait_for_revision(step_log, self.sha)
        window = self.settings.verify_seconds
        failures = 0

        def still_ready() -> None:
            nonlocal failures
            status, _ = self.stack.web.get("/api/readyz")
            failures += status != 200
            if failures > self.settings.verify_max_5xx:
                raise StepFailed(f"the new version failed its readiness check {failures} times after the switch")

        self.watch(still_ready, window)
        step_log.write(f"ready for {window:.0f}s, {failures} failed check(s)")

    # --- SETTLE ---------------------------------------------------------------------------------

    def record(self, step_log: StepLog) -> None:
        step_log.write(f"{self.sha} is live: {self.stack.current} -> releases/{self.sha}")
        self.ledger.set_live_ancestry(self.repository.ancestors(self.sha))

    def prune(self, step_log: StepLog) -> None:
        self.stack.prune(step_log, {self.sha, *([self.old.name] if self.old else [])})


Target = Stack | SwarmStack | HostStack


def deploy_one(ledger: Ledger, deploy: sqlite3.Row, settings: HookSettings, stack: Target) -> Result:
    started = time.monotonic()
    hook = settings.hooks.get(deploy["hook_id"])
    log.info("deploy %s: %s of %s (%s)", deploy["id"], deploy["kind"], deploy["sha"], deploy["hook_id"])
    if hook is None:
        result = Result("failed", f"hook {deploy['hook_id']!r} is no longer configured")
    else:
        repository = Repository(stack.root, hook.branch, settings.deploy)
        release: Deployment | SwarmDeployment | HostDeployment
        if isinstance(stack, SwarmStack):
            release = SwarmDeployment(ledger, deploy, hook, repository, stack, settings.deploy)
        elif isinstance(stack, HostStack):
            release = HostDeployment(ledger, deploy, hook, repository, stack, settings.deploy)
        else:
            release = Deployment(ledger, deploy, hook, repository, stack, settings.deploy)
        result = release.run()
    ledger.finish(deploy["id"], result.status, result.reason)
    log.info("deploy %s %s after %.1fs: %s", deploy["id"], result.status, time.monotonic() - started, result.reason)
    return result


def learn_live_commit(ledger: Ledger, settings: HookSettings, stack: Target) -> None:
    """Until a deploy records one, the live commit is the one the running web containers say."""
    if ledger.live_sha() is not None:
        return
    found = stack.revision_of_running_web()
    if found and COMMIT_ID.fullmatch(found):
        ledger.set_live(found)
        ledger.set_live_ancestry(Repository(stack.root, "", settings.deploy).ancestors(found))
        log.info("live commit, from the running web containers: %s", found)


def work(settings: HookSettings) -> None:
    # A stop (SIGTERM: `docker stop`, a deploy of the deployer, systemd) ends the loop between two
    # deploys, at once when idle. PID 1 in its container, the worker would otherwise ignore the
    # signal and be killed when the grace period ran out, a deploy or not. A deploy under way goes
    # on; one killed at the grace period's end is marked failed at the next start (below).
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    configure_logging(settings.log_level)
    ledger = Ledger(settings.ledger_path)
    ledger.create()
    stack = deploy_target(settings.deploy)
    for deploy_id in ledger.interrupt_running("interrupted: the deployer stopped during this deploy"):
        log.warning("deploy %s was left running by a previous deployer; marked failed", deploy_id)
    mode = {SwarmStack: "Swarm", HostStack: "systemd"}.get(type(stack), "Compose")
    log.info("deployer ready: the stack at %s runs on %s; hooks %s", stack.root, mode, ", ".join(settings.hooks))
    while not stopping.is_set():
        settings.heartbeat_path.touch()
        learn_live_commit(ledger, settings, stack)
        deploy = ledger.claim_next()
        if deploy is None:
            stopping.wait(settings.deploy.poll_interval)
            continue
        deploy_one(ledger, deploy, settings, stack)
    log.info("deployer stopped")


def deploy_target(settings: DeploySettings) -> Target:
    """The releases on this host (DEPLOY_TARGET=systemd), or the stack the deployer's container is in."""
    return HostStack(settings) if settings.target == "systemd" else stack_of_this_container(settings)


def stack_of_this_container(settings: DeploySettings) -> Stack | SwarmStack:
    """The stack the deployer runs in, from the labels on its own container: Swarm's when `docker
    stack deploy` started it, else the compose project's."""
    client = docker.from_env()
    container = client.containers.get(socket.gethostname())
    if STACK_LABEL in container.labels:
        if not settings.root or not Path(settings.root, "docker-compose.prod.yml").exists():
            raise SystemExit(
                f"deployer: DEPLOY_ROOT={settings.root!r} holds no docker-compose.prod.yml (run `make swarm`)"
            )
        return SwarmStack.of_container(client, container, settings)
    stack = ComposeStack(client, Project.of_container(container))
    if settings.root != stack.root:
        raise SystemExit(
            f"deployer: the repository must be mounted at its own path: DEPLOY_ROOT is "
            f"{settings.root!r} but the project lives at {stack.root!r} (run `make prod`)"
        )
    return stack
