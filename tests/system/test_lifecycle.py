"""Volumes keep data across `docker compose down` / `up`; `make kill` leaves nothing of the project
running, and nothing else."""

import os
import subprocess
import uuid

import docker

from docker_env import LABELS
from harness.paths import REPO_ROOT
from harness.stacks import MADE_BY_COMPOSE


def test_every_service_stops_when_asked_and_registered_users_survive_down_and_up(stack):
    api = stack.api()
    email = f"persist-{uuid.uuid4().hex[:8]}@example.com"
    assert api.register(email).status_code == 201
    stack.compose_run("stop")
    # Each stopped on SIGTERM: none waited out the grace period for a SIGKILL (exit 137), which
    # every `down` and every deploy that stops a container would pay for (`make kill` kills at once).
    made = [f"com.docker.compose.project={stack.project}", f"{MADE_BY_COMPOSE}=False"]
    exits = {
        c.name: c.attrs["State"]["ExitCode"]
        for c in docker.from_env().containers.list(all=True, filters={"label": made})
    }
    assert exits and all(code != 137 for code in exits.values()), exits
    stack.compose_run("down")
    stack.compose_run("up", "-d", "--wait")
    assert api.patiently(lambda: api.login(email)).status_code == 200


def test_make_kill_leaves_no_container_of_the_project_and_only_those(stack):
    client = docker.from_env()
    # A container of the web image compose built, run by something else (a swarm's task, a
    # `docker run`): it carries the image's labels, the name of the project that built it among
    # them (here the stack's, whichever tier's build gave the shared tag its labels last).
    image_labels = {"com.docker.compose.project": stack.project, "com.docker.compose.service": "web"}
    elsewhere = client.containers.run(
        stack.container("web").image.id,
        ["sleep", "300"],
        detach=True,
        labels={**LABELS, **image_labels},
        network_mode="none",
    )
    try:
        result = subprocess.run(
            ["make", "kill"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "COMPOSE_PROJECT_NAME": stack.project},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        made_by_compose = [f"com.docker.compose.project={stack.project}", MADE_BY_COMPOSE]
        left = client.containers.list(all=True, filters={"label": made_by_compose})
        assert left == [], [c.name for c in left]
        elsewhere.reload()
        assert elsewhere.status == "running", "make kill removed a container compose did not make"
    finally:
        elsewhere.remove(force=True)
        # The stack is shared with every other module: give it back as it was (volumes were kept).
        stack.compose_run("up", "-d", "--wait")
