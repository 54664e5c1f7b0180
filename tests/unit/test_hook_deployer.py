"""The deployer's phases against a fake Docker, nginx and git (the outside world), each step made to
fail in turn: what serves afterwards, and what the ledger says. The real thing runs in the system
tier (test_push_to_deploy.py)."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.paths import REPO_ROOT
from hook.deployer import PREPARE, SETTLE, SWITCH, Deployment
from hook.hooks import Hook
from hook.settings import DeploySettings
from hook.stack import Web
from hook.steps import StepFailed

LIVE, NEW, TIP, STRAY = "1" * 40, "2" * 40, "3" * 40, "4" * 40
HOOK = Hook("github", (), "main", None, "deploy")


class Broken(RuntimeError):
    """What the fake outside world raises when a test breaks it."""


@dataclass
class Container:
    web: Web
    image: str
    status: str = "running"
    health: str = "healthy"


@dataclass
class FakeStack:
    """Docker, compose and nginx as far as the deployer can tell. ``breaks`` names a call to fail
    (``method`` or ``method#n`` for its n-th call)."""

    root: str
    containers: dict[str, Container] = field(default_factory=dict)
    nginx: list[str] = field(default_factory=lambda: ["web:8000"])
    breaks: set[str] = field(default_factory=set)
    calls: dict[str, int] = field(default_factory=dict)
    new_health: str = "healthy"  # what new containers report once started
    unhealthy_after_switch: bool = False
    edge_errors: int = 0
    draining: int = 0
    removed_images: list[str] = field(default_factory=list)
    serial: itertools.count = field(default_factory=lambda: itertools.count(1))

    def _called(self, method: str) -> None:
        self.calls[method] = self.calls.get(method, 0) + 1
        if method in self.breaks or f"{method}#{self.calls[method]}" in self.breaks:
            raise Broken(f"{method} broke")

    def add_web(self, image: str) -> Web:
        number = next(self.serial)
        web = Web(f"id-{number}", f"web-{number}", (f"10.0.0.{number}",))
        self.containers[web.name] = Container(web, image)
        return web

    # what serves: the upstreams nginx points at, "web:8000" meaning every running web container
    def serving(self) -> list[Container]:
        names = [c.web.name for c in self.containers.values() if c.status == "running"]
        targets = names if self.nginx == ["web:8000"] else [u.rsplit(":", 1)[0] for u in self.nginx]
        return [self.containers[name] for name in targets if name in self.containers]

    def compose(self, log, args, timeout, env):
        self._called(f"compose {args[0]}")
        log.write("$ docker-compose " + " ".join(args))

    def web_containers(self):
        self._called("web_containers")
        return [c.web for c in self.containers.values() if c.status == "running"]

    def restart_jobs(self, log, env, timeout):
        self._called("restart_jobs")
        log.write(f"worker and scheduler on {env['WEB_TAG']}")

    def start_web(self, log, count, env, timeout):
        self._called("start_web")
        started = [self.add_web(env["WEB_TAG"]) for _ in range(count)]
        for web in started:
            self.containers[web.name].health = "starting"
        return started

    def state(self, web):
        self._called("state")
        container = self.containers[web.name]
        if container.health == "starting":
            container.health = self.new_health
        switched_to_it = web.upstream in self.nginx
        if self.unhealthy_after_switch and switched_to_it and container.image == NEW:
            container.health = "unhealthy"
        return container.status, container.health

    def log_tail(self, web, lines=30):
        return "last words\n"

    def stop(self, web, timeout):
        self._called("stop")
        del self.containers[web.name]

    def remove(self, web):
        self._called("remove")
        self.containers.pop(web.name, None)

    def point_nginx_at(self, log, upstreams):
        self._called("point_nginx_at")
        self.nginx = list(upstreams)
        log.write(f"nginx -> {' '.join(upstreams)}")

    def nginx_draining(self):
        self._called("nginx_draining")
        return self.draining

    def edge_errors_since(self, since, addresses):
        self._called("edge_errors_since")
        return self.edge_errors

    def image_repository(self, web, tag):
        return "flask-stack/web"

    def remove_image(self, name):
        self._called("remove_image")
        self.removed_images.append(name)
        return f"removed {name}"


@dataclass
class FakeRepository:
    """git as far as the deployer can tell: ``history`` lists the branch oldest first."""

    history: list[str] = field(default_factory=lambda: [STRAY, LIVE, NEW])
    tip: str = NEW
    breaks: set[str] = field(default_factory=set)
    checked_out: str | None = LIVE
    remote: str = "origin"
    remote_ref: str = "origin/main"

    def fetch(self, log):
        if "fetch" in self.breaks:
            raise Broken("fetch broke")
        return self.tip

    def has_commit(self, sha):
        return sha in self.history or sha == TIP

    def is_ancestor(self, ancestor, descendant):
        if descendant == self.remote_ref:
            descendant = self.tip
        order = [*self.history, TIP]
        return ancestor in order and descendant in order and order.index(ancestor) <= order.index(descendant)

    def checkout(self, log, sha):
        if "checkout" in self.breaks:
            raise Broken("checkout broke")
        self.checked_out = sha

    def restore(self, sha):
        self.checked_out = sha
        return f"working tree back at {sha[:12]}"

    def ancestors(self, sha, limit=10_000):
        return self.history[: self.history.index(sha) + 1][::-1]


@pytest.fixture
def stack(tmp_path):
    stack = FakeStack(root=str(tmp_path))
    stack.add_web(LIVE)
    return stack


SETTINGS = DeploySettings(root="", verify_seconds=3, verify_max_5xx=10, drain_timeout=2, poll_interval=1)


def deploy(ledger, stack, repository=None, sha=NEW, kind="push", settings=SETTINGS):
    """One deploy through the ledger, on a fake clock (sleeping only moves it on)."""
    ledger.enqueue("github", sha, "refs/heads/main", kind=kind, forced=True)
    claimed = ledger.claim_next()
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    deployment = Deployment(
        ledger, claimed, HOOK, repository or FakeRepository(), stack, settings, clock=lambda: now[0], sleep=sleep
    )
    result = deployment.run()
    ledger.finish(claimed["id"], result.status, result.reason)
    return result, ledger.deploy(claimed["id"])


def assert_a_healthy_version_serves(stack, image):
    serving = stack.serving()
    assert serving, f"nothing serves: nginx -> {stack.nginx}, containers {list(stack.containers)}"
    assert {(c.image, c.status, c.health) for c in serving} == {(image, "running", "healthy")}, serving


def steps_of(record):
    return [(step["name"], step["status"]) for step in record["steps"]]


def test_a_deploy_goes_through_the_three_phases_and_ends_on_the_new_version(ledger, stack):
    result, record = deploy(ledger, stack)
    assert result.status == "succeeded", result.reason
    assert steps_of(record) == [(name, "succeeded") for name in (*PREPARE, *SWITCH, *SETTLE)]
    assert_a_healthy_version_serves(stack, NEW)
    assert [c.image for c in stack.containers.values()] == [NEW]  # the old one stopped
    assert stack.nginx == ["web:8000"]
    assert ledger.live_sha() == NEW
    assert record["steps"][PREPARE.index("fetch")]["output"].startswith(f"{NEW[:12]} is on main")


def test_a_stack_of_two_replicas_stays_at_two(ledger, stack):
    stack.add_web(LIVE)
    result, record = deploy(ledger, stack)
    assert result.status == "succeeded", result.reason
    assert sorted(c.image for c in stack.containers.values()) == [NEW, NEW]
    switch = next(step for step in record["steps"] if step["name"] == "switch")
    assert "nginx -> web-3:8000 web-4:8000" in switch["output"]


@pytest.mark.parametrize(
    ("broken", "where"),
    [
        ({"fetch"}, "fetch"),
        ({"checkout"}, "checkout"),
        ({"compose build"}, "build"),
        ({"compose run"}, "migrate"),
        ({"start_web"}, "start"),
        ({"state#1"}, "health"),
    ],
)
def test_a_failure_before_the_switch_is_undone_and_the_old_version_never_stops_serving(ledger, stack, broken, where):
    repository = FakeRepository(breaks=broken & {"fetch", "checkout"})
    stack.breaks = broken - {"fetch", "checkout"}
    result, record = deploy(ledger, stack, repository)
    assert result.status == "failed" and result.reason.startswith(f"{where}: ")
    assert steps_of(record)[-2:] == [(where, "failed"), ("undo", "succeeded")]
    assert_a_healthy_version_serves(stack, LIVE)
    assert stack.nginx == ["web:8000"]  # never moved
    assert [c.image for c in stack.containers.values()] == [LIVE]  # anything started is gone
    assert repository.checked_out == LIVE
    assert ledger.live_sha() == LIVE


def test_a_new_version_that_never_gets_healthy_is_removed(ledger, stack):
    stack.new_health = "unhealthy"
    result, record = deploy(ledger, stack)
    assert result.status == "failed" and "health" in result.reason
    assert "last words" in next(step for step in record["steps"] if step["name"] == "health")["output"]
    assert_a_healthy_version_serves(stack, LIVE)


def test_nginx_refusing_the_switch_leaves_the_old_version_serving(ledger, stack):
    stack.breaks = {"point_nginx_at#1"}
    result, record = deploy(ledger, stack)
    assert result.status == "failed" and result.reason.startswith("switch: ")
    assert ("switch back", "succeeded") in steps_of(record)
    assert_a_healthy_version_serves(stack, LIVE)
    assert [c.image for c in stack.containers.values()] == [LIVE]


def test_a_version_that_turns_unhealthy_after_the_switch_is_switched_back_while_the_old_still_runs(ledger, stack):
    stack.unhealthy_after_switch = True
    result, record = deploy(ledger, stack)
    assert result.status == "rolled_back"
    assert "after the switch" in result.reason and "switched back to web-1" in result.reason
    assert steps_of(record)[-3:] == [("switch", "succeeded"), ("verify", "failed"), ("switch back", "succeeded")]
    assert_a_healthy_version_serves(stack, LIVE)
    assert [c.image for c in stack.containers.values()] == [LIVE]
    assert "stop" not in stack.calls  # the old version was never stopped
    assert ledger.live_sha() == LIVE


def test_too_many_5xx_after_the_switch_switch_back(ledger, stack):
    stack.edge_errors = 11
    result, _ = deploy(ledger, stack)
    assert result.status == "rolled_back" and "11 5xx answers" in result.reason
    assert_a_healthy_version_serves(stack, LIVE)


def test_a_few_5xx_are_tolerated(ledger, stack):
    stack.edge_errors = 10
    result, record = deploy(ledger, stack)
    assert result.status == "succeeded"
    assert "10 5xx answer(s)" in next(step for step in record["steps"] if step["name"] == "verify")["output"]


def test_if_nginx_cannot_be_switched_back_both_versions_keep_running(ledger, stack):
    stack.unhealthy_after_switch = True
    stack.breaks = {"point_nginx_at#2"}  # the switch works; pointing back does not
    result, record = deploy(ledger, stack)
    assert result.status == "failed" and "both versions left running" in result.reason
    assert ("switch back", "failed") in steps_of(record)
    assert sorted(c.image for c in stack.containers.values()) == [LIVE, NEW]  # nothing removed
    assert stack.serving(), "nginx must still point at something running"


@pytest.mark.parametrize(
    ("broken", "step"),
    [({"stop"}, "drain"), ({"point_nginx_at#2"}, "drain"), ({"restart_jobs"}, "jobs"), ({"remove_image"}, "prune")],
)
def test_a_failure_after_the_point_of_no_return_is_reported_and_undoes_nothing(ledger, stack, broken, step):
    earlier = ledger.enqueue("github", STRAY, "refs/heads/main", kind="rollback")  # its image is prunable
    ledger.claim_next()
    with ledger.step(earlier.deploy_id, "build"):
        pass
    ledger.finish(earlier.deploy_id, "failed", "health")
    stack.breaks = broken
    (Path(stack.root) / ".env").write_text("POSTGRES_IMAGE=x\n")
    result, record = deploy(ledger, stack)
    assert result.status == "succeeded"
    assert f"{step}: " in result.reason
    assert (step, "failed") in steps_of(record)
    assert ledger.live_sha() == NEW
    assert any(c.image == NEW and c.status == "running" for c in stack.serving())


def test_a_record_that_cannot_be_written_is_reported_with_the_new_version_live(ledger, stack, tmp_path):
    stack.root = str(tmp_path / "missing-directory")
    result, _ = deploy(ledger, stack)
    assert result.status == "succeeded" and "record: " in result.reason
    assert_a_healthy_version_serves(stack, NEW)


def test_drain_says_when_it_timed_out(ledger, stack):
    stack.draining = 3  # nginx's old workers never finish
    result, record = deploy(ledger, stack)
    assert result.status == "succeeded"
    assert "drain timed out" in result.reason
    assert (
        "drain timed out after 2s: 3 still busy" in next(s for s in record["steps"] if s["name"] == "drain")["output"]
    )


def test_the_record_step_writes_the_live_image_and_tells_the_receiver_the_ancestry(ledger, stack):
    env_file = Path(stack.root) / ".env"
    env_file.write_text("POSTGRES_IMAGE=x\nWEB_TAG=old\n")
    deploy(ledger, stack)
    text = env_file.read_text()
    assert "POSTGRES_IMAGE=x" in text and f"WEB_TAG={NEW}" in text and "WEB_TAG=old" not in text
    # A replay of the push that made LIVE live is now refused by the receiver's side of the ledger.
    assert ledger.enqueue("github", LIVE, "refs/heads/main", delivery_id="replay").outcome == "refused"


def test_a_push_that_does_not_descend_from_the_live_commit_is_refused_before_anything_starts(ledger, stack):
    result, record = deploy(ledger, stack, FakeRepository(tip=NEW), sha=STRAY)
    assert result.status == "refused"
    assert "does not descend from the live commit" in result.reason and "make rollback" in result.reason
    assert steps_of(record) == [("fetch", "failed")]
    assert "start_web" not in stack.calls
    assert_a_healthy_version_serves(stack, LIVE)


def test_a_push_that_is_the_branch_tip_may_go_back_a_force_push(ledger, stack):
    result, _ = deploy(ledger, stack, FakeRepository(tip=STRAY), sha=STRAY)
    assert result.status == "succeeded", result.reason


def test_a_rollback_goes_back_by_the_same_path(ledger, stack):
    result, record = deploy(ledger, stack, FakeRepository(tip=NEW), sha=STRAY, kind="rollback")
    assert result.status == "succeeded", result.reason
    assert [name for name, _ in steps_of(record)] == [*PREPARE, *SWITCH, *SETTLE]
    assert_a_healthy_version_serves(stack, STRAY)


def test_a_commit_not_on_the_branch_is_not_deployed(ledger, stack):
    result, _ = deploy(ledger, stack, FakeRepository(history=[LIVE, NEW], tip=NEW), sha=TIP)
    assert result.status == "failed" and "is not on branch main" in result.reason
    assert_a_healthy_version_serves(stack, LIVE)


def test_a_step_failure_is_a_step_failed_naming_the_step(ledger, stack):
    stack.breaks = {"compose build"}
    result, _ = deploy(ledger, stack)
    assert result.reason.startswith("build: Broken: compose build broke")
    assert issubclass(Broken, Exception) and not issubclass(Broken, StepFailed)


def test_the_post_switch_check_counts_5xx_per_upstream_from_nginxs_log_format():
    """ComposeStack reads nginx's access log (log_format edge) through a fake Docker client."""
    from hook.stack import ComposeStack, Project

    lines = [
        '10.0.0.9 [02/Dec/2026:04:08:50 +0000] "GET /api/users/me HTTP/1.1" 500 58 0.004 "curl" rid=a up=10.0.0.7:8000',
        '10.0.0.9 [02/Dec/2026:04:08:50 +0000] "GET /api/x HTTP/1.1" 502 120 0.001 "curl" rid=b up=10.0.0.8:8000',
        '10.0.0.9 [02/Dec/2026:04:08:51 +0000] "GET /x HTTP/1.1" 504 9 5.0 "c" rid=c up=10.0.0.7:8000, 10.0.0.8:8000',
        '10.0.0.9 [02/Dec/2026:04:08:51 +0000] "GET /api/x HTTP/1.1" 503 120 0.001 "curl" rid=d up=10.0.0.7:8000',
        '10.0.0.9 [02/Dec/2026:04:08:51 +0000] "GET /api/x HTTP/1.1" 500 120 0.001 "curl" rid=e up=10.0.0.2:8000',
        '10.0.0.9 [02/Dec/2026:04:08:52 +0000] "POST /api/auth/login HTTP/2.0" 429 80 0.000 "curl" rid=f up=',
        '10.0.0.9 [02/Dec/2026:04:08:52 +0000] "GET /api/healthz HTTP/1.1" 404 80 0.000 "curl" rid=g up=10.0.0.7:8000',
    ]

    class Nginx:
        def logs(self, since, stderr):
            return "\n".join(lines).encode()

    class Containers:
        def list(self, **_filters):
            return [Nginx()]

    class Client:
        containers = Containers()

    stack = ComposeStack(Client(), Project("p", "/srv", ("docker-compose.prod.yml",), ()))
    # 500 and 502 from the new ones, the 504 that went through both; not the 503, the old one's 500, the 4xx
    assert stack.edge_errors_since(0, ("10.0.0.7", "10.0.0.8")) == 3


def test_the_worker_stops_at_once_when_told_between_deploys(tmp_path):
    """SIGTERM (`docker stop`, systemd) ends the idle worker now, not at the grace period's SIGKILL:
    it would ignore the signal as PID 1 in its container without a handler of its own."""
    environ = {
        "PATH": os.environ["PATH"],
        "HOOK_DB": str(tmp_path / "hook.sqlite"),
        "HOOK_HEARTBEAT": str(tmp_path / "heartbeat"),
        "DEPLOY_TARGET": "systemd",  # releases under a folder: no Docker needed to start
        "DEPLOY_ROOT": str(tmp_path / "repo"),
        "DEPLOY_HOST_HOME": str(tmp_path / "srv"),
        "DEPLOY_POLL_INTERVAL": "600",  # asleep between polls when the signal comes
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "hook", "worker"],
        cwd=REPO_ROOT / "services/hook",
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert worker.stdout is not None
        assert "deployer ready" in worker.stdout.readline()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=30) == 0
        assert "deployer stopped" in worker.stdout.read()
    finally:
        worker.kill()
