"""The host layout's own decisions (hook/host.py), on real folders: what the API's settings file
says, when a reload is not enough, what a switch leaves, and what pruning keeps. The deploys
themselves, with git, pip, gunicorn and Postgres, are in tests/system/test_host_releases.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hook.hooks import ConfigError
from hook.host import HostStack, WebAddress, read_env_file
from hook.settings import DeploySettings, HookSettings
from hook.steps import StepFailed

A, B, C, D = "a" * 40, "b" * 40, "c" * 40, "d" * 40


class Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> None:
        self.lines.append(text)


def make_stack(tmp_path: Path, keep: int = 5) -> HostStack:
    return HostStack(DeploySettings(root=str(tmp_path / "repo"), host_home=str(tmp_path), keep_releases=keep))


def add_release(stack: HostStack, sha: str, venv: str = "v1", age: int = 0, gunicorn_conf: str = "bind = 1\n") -> Path:
    release = stack.release(sha)
    web = release / "services" / "web"
    (web / "serving").mkdir(parents=True)
    (web / "serving" / "metrics.py").write_text("# the master loads this\n")
    (web / "gunicorn.conf.py").write_text(gunicorn_conf)
    (web / "api").mkdir()
    (web / "api" / "views.py").write_text(f"# {sha}\n")
    (stack.venvs / venv).mkdir(parents=True, exist_ok=True)
    (release / "venv").symlink_to(stack.venvs / venv)
    os.utime(release, (1_000_000 + age, 1_000_000 + age))
    return release


def test_the_settings_file_is_read_as_systemd_reads_an_environment_file(tmp_path):
    path = tmp_path / "env.production"
    path.write_text(
        "# a comment\n; another\n\nDATABASE_URL=postgresql://u:p@db/app\n"
        "QUOTED=\"a value = with spaces\"\nSINGLE='x'\n  SPACED = y \nnot a setting\n"
    )
    assert read_env_file(str(path)) == {
        "DATABASE_URL": "postgresql://u:p@db/app",
        "QUOTED": "a value = with spaces",
        "SINGLE": "x",
        "SPACED": "y",
    }


def test_a_missing_settings_file_fails_the_step_naming_it(tmp_path):
    with pytest.raises(StepFailed, match=r"env\.production cannot be read"):
        read_env_file(str(tmp_path / "env.production"))


def test_a_release_that_changes_only_the_app_is_a_reload(tmp_path):
    stack = make_stack(tmp_path)
    old, new = add_release(stack, A), add_release(stack, B)
    assert not stack.needs_restart(old, new)


@pytest.mark.parametrize(
    "change",
    ["no release served before", "new pins (another virtualenv)", "gunicorn's config", "code the master imports"],
)
def test_what_a_reload_cannot_load_takes_a_restart(tmp_path, change):
    stack = make_stack(tmp_path)
    old = add_release(stack, A)
    new = add_release(stack, B, venv="v2" if "pins" in change else "v1")
    if "config" in change:
        (new / "services/web/gunicorn.conf.py").write_text("bind = 2\n")
    if "master imports" in change:
        (new / "services/web/serving/metrics.py").write_text("# changed\n")
    assert stack.needs_restart(None if "before" in change else old, new)


def test_the_switch_replaces_the_link_in_one_step(tmp_path):
    stack = make_stack(tmp_path)
    add_release(stack, A)
    add_release(stack, B)
    assert stack.live_release() is None and stack.revision_of_running_web() is None
    stack.point_current_at(A)
    stack.point_current_at(B)
    assert os.readlink(stack.current) == f"releases/{B}", "relative: the home can move"
    assert stack.live_release() == stack.release(B) and stack.revision_of_running_web() == B
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []


def test_pruning_keeps_the_newest_and_the_named_releases_and_the_virtualenvs_they_use(tmp_path):
    stack = make_stack(tmp_path, keep=2)
    add_release(stack, A, venv="old", age=1)
    add_release(stack, B, venv="v1", age=2)
    add_release(stack, C, venv="v1", age=3)
    add_release(stack, D, venv="v2", age=4)
    (stack.releases / ".unpacking.tmp").mkdir()  # an unpack in progress is not a release
    log = Lines()
    stack.prune(log, keep={A})
    assert sorted(p.name for p in stack.releases.iterdir()) == sorted([".unpacking.tmp", A, C, D])
    assert sorted(p.name for p in stack.venvs.iterdir()) == ["old", "v1", "v2"]
    stack.prune(log, keep={C})
    assert sorted(p.name for p in stack.venvs.iterdir()) == ["v1", "v2"], "the virtualenv no release uses goes"
    assert any("removed release bbbbbbbbbbbb" in line for line in log.lines)


def test_nothing_listening_is_status_0(tmp_path):
    assert WebAddress(f"unix:{tmp_path}/nothing.sock").get("/api/healthz") == (0, {})


def test_the_host_target_is_chosen_by_the_environment_and_a_typo_is_refused():
    settings = HookSettings.from_environ(
        {"DEPLOY_TARGET": "systemd", "DEPLOY_SYSTEMCTL": "sudo -n /bin/systemctl", "DEPLOY_KEEP_RELEASES": "3"},
        with_secrets=False,
    )
    assert settings.deploy.target == "systemd"
    assert settings.deploy.systemctl == ("sudo", "-n", "/bin/systemctl") and settings.deploy.keep_releases == 3
    with pytest.raises(ConfigError, match="DEPLOY_TARGET='sytemd'"):
        HookSettings.from_environ({"DEPLOY_TARGET": "sytemd"}, with_secrets=False)
