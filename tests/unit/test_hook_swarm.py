"""The deployer on Docker Swarm: its phases through hook.swarm.SwarmStack, with a fake Docker client
standing in for Swarm (an update begins a moment after it is asked for, then completes or is rolled
back by Swarm) and a fake `docker-compose` on PATH. The real swarm runs in the system tier
(test_swarm.py)."""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import docker
import pytest

from hook import deployer
from hook.deployer import SWARM_PREPARE, SWARM_SETTLE, SWARM_SWITCH, SwarmDeployment
from hook.settings import DeploySettings
from hook.swarm import STACK_LABEL, SwarmStack

from .test_hook_deployer import HOOK, LIVE, NEW, FakeRepository, steps_of

STACK = "flask-stack-prod"
REGISTRY = "registry.internal:5000"
LAST_UPDATE = {"State": "completed", "StartedAt": "2026-12-01T10:00:00Z", "Message": "update completed"}


@dataclass
class FakeService:
    """A Swarm service as Docker's API shows it. ``outcome`` is how an update of it ends:
    completed, rollback_completed (the previous image back), or never (still updating)."""

    image: str
    outcome: str = "completed"
    attrs: dict[str, Any] = field(default_factory=dict)
    reloads_until_begun: int = 2  # the update is asynchronous: the old status shows for a while
    pending: list[dict[str, str]] = field(default_factory=list)
    updates: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.show()

    def show(self, status: dict[str, str] | None = None) -> None:
        self.attrs = {
            "Spec": {"TaskTemplate": {"ContainerSpec": {"Image": self.image}}},
            "UpdateStatus": status or self.attrs.get("UpdateStatus", LAST_UPDATE),
        }

    def update(self, **changes: Any) -> None:
        assert changes.get("fetch_current_spec") is True, "the rest of the spec must stay as it is"
        self.updates.append(changes)
        previous, self.image = self.image, changes["image"]
        started = f"2026-12-02T08:00:{len(self.updates):02d}Z"
        self.pending = [{}] * self.reloads_until_begun + [{"State": "updating", "StartedAt": started}]
        if self.outcome == "completed":
            self.pending.append({"State": "completed", "StartedAt": started, "Message": "update completed"})
        elif self.outcome == "rollback_completed":
            self.pending.append({"State": "rollback_started", "StartedAt": started, "Message": "task failed"})
            self.pending.append({"State": "rollback_completed", "StartedAt": started, "Message": "rollback done"})
            self.rolled_back_to = previous

    def tasks(self) -> list[dict[str, Any]]:
        """Web's tasks: after an update Swarm rolled back, the new image's task that failed."""
        if getattr(self, "rolled_back_to", None) is None or self.pending:
            return []
        status = {
            "State": "failed",
            "Err": "task: non-zero exit (137): dockerexec: unhealthy container",
            "Timestamp": "2026-12-02T08:00:09Z",
        }
        spec = {"ContainerSpec": {"Image": f"{self.updates[-1]['image']}@sha256:0123"}}
        return [{"ID": "f2hpbk31isqxr93gel6xjjulz", "Status": status, "Spec": spec}]

    def reload(self) -> None:
        if not self.pending:
            return
        status = self.pending.pop(0)
        if status.get("State") == "rollback_completed":
            self.image = self.rolled_back_to
        self.show(status or None)


@dataclass
class FakeImage:
    name: str
    images: FakeImages
    attrs: dict[str, Any]

    def tag(self, name: str) -> bool:
        self.images.names.add(name)
        return True


@dataclass
class FakeImages:
    names: set[str] = field(default_factory=set)
    env: dict[str, list[str]] = field(default_factory=dict)  # an image's Config.Env
    pushed: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    push_error: str = ""

    def get(self, name: str) -> FakeImage:
        if name not in self.names:
            raise docker.errors.ImageNotFound(name)
        return FakeImage(name, self, {"Config": {"Env": self.env.get(name, [])}})

    def push(self, repository: str, tag: str, stream: bool, decode: bool) -> list[dict[str, str]]:
        if self.push_error:
            return [{"status": "Preparing"}, {"error": self.push_error}]
        self.pushed.append(f"{repository}:{tag}")
        return [{"status": "Pushed"}]

    def remove(self, name: str) -> None:
        self.removed.append(name)


@dataclass
class FakeServices:
    web: FakeService
    jobs: dict[str, FakeService] = field(default_factory=dict)  # the worker and scheduler, by name

    def get(self, name: str) -> FakeService:
        if name == f"{STACK}_web":
            return self.web
        if name in self.jobs:
            return self.jobs[name]
        raise docker.errors.NotFound(name)


class FakeDocker:
    def __init__(self, service: FakeService):
        self.services = FakeServices(service)
        self.images = FakeImages({f"flask-stack/web:{LIVE}"})


@pytest.fixture
def fake_compose(tmp_path, monkeypatch):
    """A `docker-compose` that records its arguments, PROD_ENV_FILE and WEB_TAG, and fails while
    the file ``broken-build`` exists (the deployer passes it no environment of the test's)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "compose-calls"
    script = bin_dir / "docker-compose"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$* PROD_ENV_FILE=$PROD_ENV_FILE WEB_TAG=$WEB_TAG" >> {calls}\n'
        f'[ ! -e {tmp_path}/broken-build ] || {{ echo "build failed"; exit 1; }}\n'
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def settings_for(root: Path, registry: str = "", roll_timeout: float = 900) -> DeploySettings:
    (root / ".env.d").mkdir(exist_ok=True)
    (root / ".env.d/.env.production").write_text("APP_ENV=production\n")
    return DeploySettings(
        root=str(root),
        env_files=(str(root / ".env"), str(root / ".env.d/.env.production")),
        registry=registry,
        roll_timeout=roll_timeout,
        poll_interval=1,
    )


def deploy_on_swarm(ledger, docker_client, settings, sha=NEW, repository=None):
    """One deploy through the ledger on a fake clock (sleeping only moves it on)."""
    ledger.enqueue("github", sha, "refs/heads/main", kind="push", forced=True)
    claimed = ledger.claim_next()
    now = [0.0]

    def sleep(seconds):
        now[0] += seconds

    # A deploy "builds" the image: the fake compose cannot reach the fake client, so the test does.
    docker_client.images.names.add(f"flask-stack/web:{sha}")
    swarm = SwarmStack(docker_client, STACK, settings, clock=lambda: now[0], sleep=sleep)
    repository = repository or FakeRepository()
    deployment = SwarmDeployment(ledger, claimed, HOOK, repository, swarm, settings, clock=lambda: now[0], sleep=sleep)
    result = deployment.run()
    ledger.finish(claimed["id"], result.status, result.reason)
    return result, ledger.deploy(claimed["id"]), repository


def test_a_deploy_on_swarm_builds_pushes_and_rolls_web_then_records_it(tmp_path, ledger, fake_compose):
    service = FakeService(f"{REGISTRY}/flask-stack/web:{LIVE}")
    docker_client = FakeDocker(service)
    worker = docker_client.services.jobs[f"{STACK}_worker"] = FakeService(f"{REGISTRY}/flask-stack/web:{LIVE}")
    result, record, _ = deploy_on_swarm(ledger, docker_client, settings_for(tmp_path, REGISTRY))
    assert result.status == "succeeded", result.reason
    assert steps_of(record) == [(name, "succeeded") for name in (*SWARM_PREPARE, *SWARM_SWITCH, *SWARM_SETTLE)]
    assert [u["image"] for u in worker.updates] == [f"{REGISTRY}/flask-stack/web:{NEW}"]
    jobs = next(step for step in record["steps"] if step["name"] == "jobs")["output"]
    assert f"no service {STACK}_scheduler" in jobs
    built = fake_compose.read_text()
    assert f"-p {STACK} --env-file {tmp_path}/.env.d/.env.production -f {tmp_path}/docker-compose.prod.yml" in built
    assert f"build web PROD_ENV_FILE={tmp_path}/.env.d/.env.production WEB_TAG={NEW}" in built
    assert docker_client.images.pushed == [f"{REGISTRY}/flask-stack/web:{NEW}"]
    assert [u["image"] for u in service.updates] == [f"{REGISTRY}/flask-stack/web:{NEW}"]
    # Not fooled by the last update's "completed": it waited for this one to begin and end.
    assert service.pending == []
    roll = next(step for step in record["steps"] if step["name"] == "roll")["output"]
    assert "updating" in roll and "completed: update completed" in roll
    assert f"WEB_TAG={NEW}" in (tmp_path / ".env").read_text()
    assert ledger.live_sha() == NEW


def test_without_a_registry_the_image_stays_on_the_node_and_is_not_pushed(tmp_path, ledger, fake_compose):
    service = FakeService(f"flask-stack/web:{LIVE}")
    docker_client = FakeDocker(service)
    result, record, _ = deploy_on_swarm(ledger, docker_client, settings_for(tmp_path))
    assert result.status == "succeeded", result.reason
    assert docker_client.images.pushed == []
    assert service.image == f"flask-stack/web:{NEW}"
    assert "no registry" in next(step for step in record["steps"] if step["name"] == "push")["output"]


def test_an_update_swarm_rolls_back_is_a_rolled_back_deploy_and_the_old_image_serves(tmp_path, ledger, fake_compose):
    service = FakeService(f"flask-stack/web:{LIVE}", outcome="rollback_completed")
    result, record, repository = deploy_on_swarm(ledger, FakeDocker(service), settings_for(tmp_path))
    assert result.status == "rolled_back", result.reason
    assert "rollback_completed: rollback done" in result.reason and f"flask-stack/web:{LIVE} back" in result.reason
    assert steps_of(record)[-1] == ("roll", "failed")
    roll = next(step for step in record["steps"] if step["name"] == "roll")["output"]
    assert f"task f2hpbk31isqx of flask-stack/web:{NEW} failed: task: non-zero exit (137)" in roll, roll
    assert service.image == f"flask-stack/web:{LIVE}"
    assert ledger.live_sha() == LIVE and repository.checked_out == LIVE
    assert not (tmp_path / ".env").exists()  # nothing recorded


def test_an_update_that_does_not_end_in_time_fails_and_says_it_goes_on(tmp_path, ledger, fake_compose):
    service = FakeService(f"flask-stack/web:{LIVE}", outcome="never")
    result, _, _ = deploy_on_swarm(ledger, FakeDocker(service), settings_for(tmp_path, roll_timeout=30))
    assert result.status == "failed"
    assert "had not ended after 30s (updating)" in result.reason and "both versions" in result.reason
    assert ledger.live_sha() == LIVE


@pytest.mark.parametrize("where", ["build", "push"])
def test_a_failure_before_the_roll_leaves_the_service_as_it_was(tmp_path, ledger, fake_compose, where):
    service = FakeService(f"{REGISTRY}/flask-stack/web:{LIVE}")
    docker_client = FakeDocker(service)
    if where == "build":
        (tmp_path / "broken-build").touch()
    else:
        docker_client.images.push_error = "connection refused"
    result, record, repository = deploy_on_swarm(ledger, docker_client, settings_for(tmp_path, REGISTRY))
    assert result.status == "failed" and result.reason.startswith(f"{where}: ")
    assert steps_of(record)[-2:] == [(where, "failed"), ("undo", "succeeded")]
    assert service.updates == [] and service.image == f"{REGISTRY}/flask-stack/web:{LIVE}"
    assert repository.checked_out == LIVE


def test_old_deploys_images_are_pruned_by_both_their_names(tmp_path, ledger, fake_compose):
    docker_client = FakeDocker(FakeService(f"{REGISTRY}/flask-stack/web:{LIVE}"))
    settings = DeploySettings(**{**settings_for(tmp_path, REGISTRY).__dict__, "keep_images": 1})
    older = ["a" * 40, "b" * 40, "c" * 40]
    history = [*older, LIVE, NEW]
    for sha in [*older, NEW]:
        result, _, _ = deploy_on_swarm(ledger, docker_client, settings, sha, FakeRepository(history=history, tip=sha))
        assert result.status == "succeeded", result.reason
    # NEW is live and c was live before it (kept: DEPLOY_KEEP_IMAGES=1); a and b go, by both names.
    assert set(docker_client.images.removed) == {
        f"{prefix}flask-stack/web:{sha}" for sha in older[:2] for prefix in ("", f"{REGISTRY}/")
    }


def test_the_live_commit_is_read_from_web_images_tag_or_else_the_revision_built_into_it(tmp_path):
    settings = settings_for(tmp_path)
    for image, revision in [
        (f"flask-stack/web:{NEW}", NEW),
        (f"{REGISTRY}/flask-stack/web:{NEW}@sha256:{'0' * 64}", NEW),
        ("flask-stack/web:latest", LIVE),  # `make swarm` built it from LIVE
        ("flask-stack/web:elsewhere", None),  # built on another node
    ]:
        docker_client = FakeDocker(FakeService(image))
        docker_client.images.names.add("flask-stack/web:latest")
        docker_client.images.env["flask-stack/web:latest"] = ["PATH=/usr/bin", f"APP_REVISION={LIVE}"]
        assert SwarmStack(docker_client, STACK, settings).revision_of_running_web() == revision, image


class FakeContainers:
    def __init__(self, labels: dict[str, str]):
        self.labels = labels

    def get(self, _name: str) -> SimpleNamespace:
        return SimpleNamespace(labels=self.labels)


@pytest.mark.parametrize("root", ["", "elsewhere"])
def test_a_deployer_on_swarm_without_the_repository_stops_and_says_what_to_run(tmp_path, monkeypatch, root):
    """Started by `docker stack deploy` with DEPLOY_ROOT unset, or pointing at a folder without the
    production compose file: it stops at once with a message, rather than deploy from nowhere."""
    client = SimpleNamespace(containers=FakeContainers({STACK_LABEL: STACK}))
    monkeypatch.setattr(deployer.docker, "from_env", lambda: client)
    settings = settings_for(tmp_path)
    settings = DeploySettings(**{**settings.__dict__, "root": str(tmp_path / root) if root else ""})
    with pytest.raises(SystemExit, match=re.escape("holds no docker-compose.prod.yml (run `make swarm`)")):
        deployer.stack_of_this_container(settings)
