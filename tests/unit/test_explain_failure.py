"""compose/scripts/explain-failure.sh, which `make prod` and swarm.sh run when they give up, on a
fake `docker` (the outside world here): it shows each failing service's last lines and names the
way out for the causes met before."""

import json
import os
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from harness.paths import REPO_ROOT

SCRIPT = REPO_ROOT / "compose/scripts/explain-failure.sh"
AUTH_FAILED = 'FATAL:  password authentication failed for user "app"'
NOPERM = "NOPERM this user has no permissions to run the 'incrby' command"


def fake_docker(tmp_path: Path, answers: dict[str, str]) -> dict[str, str]:
    """A `docker` on PATH answering each command with the text of the first pattern (a shell
    pattern on its arguments) that matches it."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    cases = "\n".join(f"  {pattern}) cat <<'OUT'\n{text}\nOUT\n  ;;" for pattern, text in answers.items())
    script = bin_dir / "docker"
    script.write_text(f'#!/bin/sh\ncase "$*" in\n{cases}\n  *) ;;\nesac\n')
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def explain(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([str(SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    return result.stderr


@pytest.mark.parametrize(
    ("log", "hint"),
    [
        (AUTH_FAILED, "make prod-kill-volumes"),
        (NOPERM, "compose/redis/app.acl"),
        ("FLASK_SECRET_KEY is an example value", "make secrets"),
    ],
)
def test_a_compose_service_that_keeps_failing_is_shown_with_the_way_out(tmp_path, log, hint):
    env = fake_docker(
        tmp_path,
        {
            "'ps -a'*": "\n".join(
                ["p-db-1\tUp 2 minutes (healthy)", "p-web-1\tRestarting (1) 3 seconds ago", "p-migrate-1\tExited (0)"]
            ),
            "'logs --tail'*": log,
        },
    )
    said = explain(env, "compose", "p")
    assert "p-web-1: Restarting (1) 3 seconds ago" in said
    assert f"    {log}" in said
    assert hint in said
    assert "p-db-1" not in said and "p-migrate-1" not in said


def test_a_swarm_service_short_of_its_tasks_is_shown_with_its_errors(tmp_path):
    env = fake_docker(
        tmp_path,
        {
            "'service ls'*": "s_db 1/1\ns_web 0/2",
            "'service ps'*": "Failed 5 seconds ago  task: non-zero exit (3)",
            "'service logs'*": AUTH_FAILED,
        },
    )
    said = explain(env, "swarm", "s")
    assert "s_web: 0/2 tasks running" in said and "non-zero exit (3)" in said
    assert "the database volume was made with other secrets" in said
    assert "s_db" not in said


def test_nothing_failing_says_so(tmp_path):
    env = fake_docker(tmp_path, {"'ps -a'*": "p-web-1\tUp 1 minute (healthy)"})
    assert "no service of p is failing now" in explain(env, "compose", "p")


def fake_swarm(tmp_path: Path, failed_tasks: int, seconds_ago: float) -> dict[str, str]:
    """A `docker` whose stack s has a service s_web with no task running and ``failed_tasks``
    tasks that failed ``seconds_ago``."""
    stamp = datetime.fromtimestamp(time.time() - seconds_ago, UTC).strftime("%Y-%m-%dT%H:%M:%S.123456789Z")
    tasks = [{"ServiceID": "web-id", "Status": {"State": "failed", "Timestamp": stamp}}] * failed_tasks
    tasks.append({"ServiceID": "web-id", "Status": {"State": "starting", "Timestamp": stamp}})
    (tmp_path / "tasks.json").write_text(json.dumps(tasks))
    return fake_docker(
        tmp_path,
        {
            "'service ls -q'*": "web-id",
            "'service ls'*Name*": "s_web 0/2",
            "'service ls'*": "0/2",
            "'service ps -q'*": "\n".join(f"task{n}" for n in range(len(tasks))),
            "'service ps'*": "Failed 1 second ago  task: non-zero exit (3)",
            "'inspect task0'*": (tmp_path / "tasks.json").read_text(),
            "'service inspect'*": "s_web",
            "'service logs'*": AUTH_FAILED,
        },
    )


def wait_for_the_swarm(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(REPO_ROOT / "compose/scripts/swarm.sh"), "wait"],
        env={**env, "STACK": "s"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_swarm_gives_up_with_the_cause_once_a_services_tasks_keep_failing(tmp_path):
    waited = wait_for_the_swarm(fake_swarm(tmp_path, failed_tasks=3, seconds_ago=0))
    assert waited.returncode == 1
    assert "giving up: tasks of s_web failed 3 times or more" in waited.stdout
    assert "the database volume was made with other secrets" in waited.stderr


def test_swarm_waits_on_when_the_failures_came_before_the_deploy(tmp_path):
    with pytest.raises(subprocess.TimeoutExpired):
        subprocess.run(
            [str(REPO_ROOT / "compose/scripts/swarm.sh"), "wait"],
            env={**fake_swarm(tmp_path, failed_tasks=5, seconds_ago=600), "STACK": "s"},
            capture_output=True,
            timeout=7,
        )
