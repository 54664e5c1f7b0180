"""Push-to-deploy on the real production stack, scaled to two web containers.

A deploy checkout (tests/deploy_checkout.py) runs docker-compose.prod.yml with the hook profile
(`make prod`). The tests push commits to GitHub's stand-in, send correctly signed push events
through nginx, and watch the API through nginx the whole time (liveness, and a signed-in user's
profile). The module shares one stack (a start costs a minute), but no test relies on another
having run: each commit is the first commit plus its own change, and a test that needs a
particular state (a version live other than the first) brings it about itself.
"""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import docker
import pytest

from deploy_checkout import HEALTH_FILE, HEALTHZ_DOCSTRING, STORE_FILE, DeployCheckout, break_healthz, git
from docker_env import LABELS
from figures import record
from harness.polling import until
from harness.stacks import containers, remove_project
from hook.deployer import PREPARE, SETTLE, SWITCH
from traffic import Traffic

PROJECT = "flask-stack-deploytest"
REPLICAS = 2
REPORT = "push-to-deploy"  # test-artifacts/push-to-deploy.json


def turn_unhealthy_once_it_serves_a_client(source: Path) -> None:
    """A version whose own liveness probe (from inside its container) fails once the version has
    answered a client through the edge, while it still answers clients: it passes the health gate
    (nothing reaches it before the switch); only watching it after the switch catches it. The mark
    is a file, so every gunicorn worker of the container sees it."""
    path = source / HEALTH_FILE
    text = path.read_text()
    assert HEALTHZ_DOCSTRING in text and "\nlog = logging" in text
    text = text.replace(
        HEALTHZ_DOCSTRING,
        HEALTHZ_DOCSTRING
        + '    served = pathlib.Path("/tmp/served-a-client")\n'
        + '    if flask.request.remote_addr != "127.0.0.1":\n'
        + "        served.touch()\n"
        + "    elif served.exists():\n"
        + '        raise RuntimeError("this commit turns unhealthy once it has served a client")\n',
    )
    path.write_text(text.replace("\nlog = logging", "\nimport pathlib\n\nimport flask\n\nlog = logging", 1))


def read_expiry_with_a_command_the_acl_refuses(source: Path) -> None:
    """A version whose token store asks Redis for a key's time to live with TTL, which the app's
    Redis user may not run (compose/redis/app.acl allows PTTL): every sign-in would fail."""
    path = source / STORE_FILE
    text = path.read_text()
    old = "remaining = self.client.pttl(self._key(key))"
    assert old in text
    path.write_text(text.replace(old, "remaining = self.client.ttl(self._key(key)) * 1000"))


def assert_switched(traffic: Traffic, old: str, new: str) -> None:
    """Only the old and the new version answered: the old first, the new last."""
    answered = traffic.answered("/api/healthz")
    assert {o.detail for o in answered} == {old, new}, traffic.summary()
    assert answered[0].detail == old and answered[-1].detail == new, traffic.summary()


def project_gateway() -> str:
    network = docker.from_env().networks.get(f"{PROJECT}_default")
    return network.attrs["IPAM"]["Config"][0]["Gateway"]


@pytest.fixture(scope="module")
def deploy(compose_ready, tmp_path_factory):
    d = DeployCheckout(PROJECT, tmp_path_factory.mktemp("push-to-deploy"))
    remove_project(PROJECT)
    d.prepare(f"DEPLOY_HEALTH_TIMEOUT=90\nWEB_REPLICAS={REPLICAS}\n")
    # Nothing of the project's own .env (images, CA) is in git: the deploy checkout writes its own.
    started = time.monotonic()
    result = d.make("prod")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (nginx,) = containers(PROJECT, "nginx")
    d.serve(nginx, project_gateway())
    d.stack_seconds = time.monotonic() - started
    yield d
    d.stop_serving()
    remove_project(PROJECT)


def web_containers() -> list:
    return containers(PROJECT, "web")


def failures_beside_steps(traffic: Traffic, *deploys: dict) -> str:
    """The failed requests and the deploys' steps on one timeline, to show which step cost them."""
    lines = [f"{_utc(o.at)} request failed: {o.detail[:160]}" for o in traffic.failures[:10]]
    lines += [f"{s['started_at']} step {s['name']} began ({s['duration_s']} s)" for d in deploys for s in d["steps"]]
    return f"{len(traffic.failures)} failed requests\n" + "\n".join(sorted(lines))


def _utc(timestamp: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(timestamp)) + f".{int(timestamp % 1 * 1000):03d}Z"


def test_the_deployer_knows_the_live_commit(deploy):
    live = until(lambda: deploy.hooks_get("/hooks/status")["live"]["sha"], timeout=30)
    assert live == git(deploy.checkout, "rev-parse", "HEAD")


def test_a_bad_signature_is_401_and_nothing_happens(deploy):
    sha = deploy.commit("unsigned attempt", version="6.6.6")
    before = deploy.hooks_get("/hooks/status")
    response = deploy.push_event(sha, secret="not-the-secret-at-all-0123456789")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    time.sleep(2)
    after = deploy.hooks_get("/hooks/status")
    assert after["recent"] == before["recent"] and after["queue"] == []
    assert deploy.version() != "6.6.6"


def test_ping_is_answered_with_pong(deploy):
    response = deploy.send({"zen": "Design for failure."}, event="ping")
    assert response.status_code == 200 and response.json()["status"] == "pong"


def test_a_push_goes_live_with_no_failed_request_and_its_replay_changes_nothing(deploy, request):
    old = deploy.version()
    sha = deploy.commit("release 1.1.0", version="1.1.0")
    delivery = str(uuid.uuid4())  # GitHub's delivery ids are GUIDs
    # A container of the live web image that compose did not make (a swarm's task, a `docker run`)
    # carries the image's labels, the project's among them: the deploy neither counts nor stops it.
    image_labels = {"com.docker.compose.project": PROJECT, "com.docker.compose.service": "web"}
    elsewhere = docker.from_env().containers.run(
        web_containers()[0].image.id,
        ["sleep", "600"],
        detach=True,
        labels={**LABELS, **image_labels},
        network_mode="none",
    )
    request.addfinalizer(lambda: elsewhere.remove(force=True))
    with deploy.traffic() as traffic:
        response = deploy.push_event(sha, delivery=delivery)
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "accepted"
        result = deploy.wait_for_deploy(response.json()["deploy_id"])
        assert result["status"] == "succeeded", json.dumps(result, indent=2)[-4000:]
        assert until(lambda: deploy.version() == "1.1.0", timeout=30)
        time.sleep(2)
    record(
        REPORT,
        "deploy",
        {
            "deploy_seconds": result["duration_s"],
            "steps": {s["name"]: s["duration_s"] for s in result["steps"]},
            "both_versions_answered_seconds": traffic.overlap_seconds(old, "1.1.0"),
            **traffic.summary(),
        },
    )
    assert traffic.failures == [], failures_beside_steps(traffic, result)
    assert_switched(traffic, old=old, new="1.1.0")
    assert deploy.hooks_get("/hooks/status")["live"]["sha"] == sha
    assert [s["name"] for s in result["steps"]] == [*PREPARE, *SWITCH, *SETTLE]
    assert len(web_containers()) == REPLICAS
    elsewhere.reload()
    assert elsewhere.status == "running", "the deploy stopped a container that was not the project's"
    # The operator's next `make prod` keeps this image.
    assert f"WEB_TAG={sha}" in (deploy.checkout / ".env").read_text()
    # The same delivery again (a retry, or a replay by whoever captured it): answered, not acted on.
    replayed = deploy.push_event(sha, delivery=delivery)
    assert replayed.status_code == 200
    assert replayed.json()["status"] == "duplicate"
    assert replayed.json()["deploy_id"] == response.json()["deploy_id"]
    status = deploy.hooks_get("/hooks/status")
    assert status["queue"] == [] and status["running"] is None


def test_an_unhealthy_commit_fails_while_two_quick_pushes_coalesce(deploy):
    """While a broken commit's deploy waits for health, two more pushes arrive: only the newer one
    is deployed, after the broken one has failed; the old version answers throughout."""
    old = deploy.version()
    (old_image,) = {c.attrs["Config"]["Image"] for c in web_containers()}
    broken = deploy.commit("broken healthz", version="1.2.0-broken", edit=break_healthz)
    with deploy.traffic() as traffic:
        failing = deploy.push_event(broken).json()
        assert failing["status"] == "accepted"
        assert until(lambda: deploy.hooks_get("/hooks/status")["running"], timeout=30)
        first = deploy.commit("fix, part one", version="1.2.0-rc1")
        second = deploy.commit("release 1.2.0", version="1.2.0")
        skipped = deploy.push_event(first).json()
        accepted = deploy.push_event(second).json()
        failed = deploy.wait_for_deploy(failing["deploy_id"])
        assert failed["status"] == "failed", json.dumps(failed, indent=2)[-3000:]
        # Its own healthcheck marks it unhealthy after the start period and three failed checks
        # (about 36 s with compose/test-timing.yml), or the deployer's DEPLOY_HEALTH_TIMEOUT runs
        # out first on a slow machine: either stops it.
        assert "health unhealthy" in failed["reason"] or "not healthy within 90s" in failed["reason"], failed["reason"]
        done = deploy.wait_for_deploy(accepted["deploy_id"])
        assert done["status"] == "succeeded", json.dumps(done, indent=2)[-4000:]
        assert until(lambda: deploy.version() == "1.2.0", timeout=30)
        time.sleep(2)
    record(
        REPORT,
        "failed deploy, then the newest of two quick pushes",
        {
            "failed_deploy_seconds": failed["duration_s"],
            "deploy_seconds": done["duration_s"],
            "both_versions_answered_seconds": traffic.overlap_seconds(old, "1.2.0"),
            **traffic.summary(),
        },
    )
    assert traffic.failures == [], failures_beside_steps(traffic, failed, done)
    assert_switched(traffic, old=old, new="1.2.0")  # never 1.2.0-broken
    superseded = deploy.hooks_get(f"/hooks/deploys/{skipped['deploy_id']}")
    assert superseded["status"] == "skipped" and "superseded" in superseded["reason"]
    failed_steps = deploy.hooks_get(f"/hooks/deploys/{failed['id']}")["steps"]
    assert [(s["name"], s["status"]) for s in failed_steps][-2:] == [("health", "failed"), ("undo", "succeeded")]
    # As many serve as before: the failed ones were removed, the old ones stopped after the switch.
    assert len(web_containers()) == REPLICAS
    # The broken commit's image went with the next successful deploy; the previous live one stays.
    images = {tag for image in docker.from_env().images.list("flask-stack/web") for tag in image.tags}
    assert f"flask-stack/web:{broken}" not in images
    assert f"removed flask-stack/web:{broken}" in next(s for s in done["steps"] if s["name"] == "prune")["output"]
    assert old_image in images


def test_a_replayed_push_of_an_older_commit_is_refused_and_nothing_is_deployed(deploy):
    """A captured push of an older release, resent with a new delivery id: signed, but older than
    what is live."""
    deploy.ensure_live_is_not_the_first_commit()
    live = deploy.version()
    before = deploy.hooks_get("/hooks/status")
    response = deploy.push_event(deploy.baseline_sha, delivery=str(uuid.uuid4()))
    assert response.status_code == 409, response.text
    assert response.json()["status"] == "refused"
    assert "older than the live commit" in response.json()["reason"]
    time.sleep(2)
    after = deploy.hooks_get("/hooks/status")
    assert after["recent"] == before["recent"] and after["queue"] == [] and after["running"] is None
    assert deploy.version() == live


def test_a_version_that_turns_unhealthy_after_the_switch_is_rolled_back_with_no_failed_request(deploy):
    live_version, live_sha = deploy.version(), deploy.live_sha()
    bad = deploy.commit("late failure", version="1.3.0-late", edit=turn_unhealthy_once_it_serves_a_client)
    with deploy.traffic() as traffic:
        result = deploy.push_and_wait(bad)
        assert until(lambda: deploy.version() == live_version, timeout=30)
        time.sleep(2)
    steps = [(s["name"], s["status"]) for s in result["steps"]]
    record(
        REPORT,
        "a version unhealthy after the switch, switched back",
        {
            "deploy_seconds": result["duration_s"],
            "steps": {s["name"]: s["duration_s"] for s in result["steps"]},
            **traffic.summary(),
        },
    )
    assert result["status"] == "rolled_back", json.dumps(result, indent=2)[-4000:]
    assert steps[-3:] == [("switch", "succeeded"), ("verify", "failed"), ("switch back", "succeeded")]
    assert "after the switch" in result["reason"]
    assert traffic.failures == [], failures_beside_steps(traffic, result)
    assert traffic.answered("/api/healthz")[-1].detail == live_version
    assert "1.3.0-late" in traffic.summary()["versions"], "the new version never served: nothing was tested"
    assert deploy.live_sha() == live_sha
    assert len(web_containers()) == REPLICAS


def test_rollback_takes_the_same_path(deploy):
    deploy.ensure_live_is_not_the_first_commit()
    old, target = deploy.version(), deploy.baseline_sha
    with deploy.traffic() as traffic:
        result = deploy.make("rollback", f"SHA={target[:12]}")
        assert result.returncode == 0, result.stdout + result.stderr
        queued = json.loads(result.stdout.strip().splitlines()[-1])
        assert queued["status"] == "accepted"
        done = deploy.wait_for_deploy(queued["deploy_id"])
        assert done["status"] == "succeeded" and done["kind"] == "rollback"
        assert until(lambda: deploy.version() == deploy.baseline_version, timeout=30)
    record(
        REPORT,
        "rollback",
        {
            "deploy_seconds": done["duration_s"],
            "both_versions_answered_seconds": traffic.overlap_seconds(old, deploy.baseline_version),
            **traffic.summary(),
        },
    )
    assert traffic.failures == [], failures_beside_steps(traffic, done)
    assert_switched(traffic, old=old, new=deploy.baseline_version)
    assert len(web_containers()) == REPLICAS


def test_a_version_whose_redis_commands_the_acl_refuses_never_goes_live(deploy):
    """`flask deploy` (the migrate step) runs every operation of the token store as production's
    Redis user: the release stops there, before a container of it starts."""
    live_version, live_sha = deploy.version(), deploy.live_sha()
    bad = deploy.commit("ttl by TTL", version="1.4.0-noperm", edit=read_expiry_with_a_command_the_acl_refuses)
    with deploy.traffic() as traffic:
        result = deploy.push_and_wait(bad)
    assert result["status"] == "failed", json.dumps(result, indent=2)[-4000:]
    migrate = next(s for s in result["steps"] if s["name"] == "migrate")
    assert migrate["status"] == "failed"
    assert "no permissions to run the 'ttl' command" in migrate["output"], migrate["output"][-2000:]
    assert "compose/redis/app.acl" in migrate["output"]
    assert "start" not in [s["name"] for s in result["steps"]]
    assert traffic.failures == [], failures_beside_steps(traffic, result)
    assert deploy.version() == live_version and deploy.live_sha() == live_sha
    assert len(web_containers()) == REPLICAS
