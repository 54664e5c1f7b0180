"""Volumes keep data across `docker compose down` / `up`; `make kill` leaves nothing running."""

import os
import subprocess
import uuid

import docker

from harness.paths import REPO_ROOT


def test_registered_users_survive_down_and_up(stack):
    api = stack.api()
    email = f"persist-{uuid.uuid4().hex[:8]}@example.com"
    assert api.register(email).status_code == 201
    stack.compose_run("down")
    stack.compose_run("up", "-d", "--wait")
    assert api.patiently(lambda: api.login(email)).status_code == 200


def test_make_kill_leaves_no_container_of_the_project(stack):
    try:
        result = subprocess.run(
            ["make", "kill"],
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            env={**os.environ, "COMPOSE_PROJECT_NAME": stack.project},
        )
        assert result.returncode == 0, result.stdout + result.stderr
        client = docker.from_env()
        left = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={stack.project}"})
        assert left == [], [c.name for c in left]
    finally:
        # The stack is shared with every other module: give it back as it was (volumes were kept).
        stack.compose_run("up", "-d", "--wait")
