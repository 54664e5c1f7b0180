"""The deployer's git, for real: a remote and a deploy checkout in temporary directories."""

from __future__ import annotations

import subprocess

import pytest

from hook.repository import Repository
from hook.settings import DeploySettings


def git(cwd, *args) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=T", "-c", "user.email=t@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


class Lines:
    def __init__(self):
        self.lines = []

    def write(self, text):
        self.lines.append(text)


@pytest.fixture
def remote_and_checkout(tmp_path):
    source, origin, checkout = tmp_path / "source", tmp_path / "origin.git", tmp_path / "deploy"
    git(tmp_path, "init", "-q", "-b", "main", str(source))
    commits = []
    for n in range(3):
        (source / "file").write_text(str(n))
        git(source, "add", "file")
        git(source, "commit", "-qm", f"commit {n}")
        commits.append(git(source, "rev-parse", "HEAD"))
    git(tmp_path, "clone", "-q", "--bare", str(source), str(origin))
    git(tmp_path, "clone", "-q", str(origin), str(checkout))
    settings = DeploySettings(root=str(checkout), known_hosts=str(tmp_path / "known_hosts"))
    return source, origin, Repository(str(checkout), "main", settings), commits


def test_fetch_returns_the_branch_tip_and_commits_relate_as_in_history(remote_and_checkout):
    source, origin, repository, commits = remote_and_checkout
    (source / "file").write_text("new")
    git(source, "commit", "-qam", "pushed later")
    git(source, "push", "-q", str(origin), "HEAD:main")
    newest = git(source, "rev-parse", "HEAD")
    assert repository.fetch(Lines()) == newest
    assert repository.has_commit(newest) and not repository.has_commit("f" * 40)
    assert repository.is_ancestor(commits[0], newest) and not repository.is_ancestor(newest, commits[0])
    assert repository.ancestors(commits[2]) == commits[::-1]
    assert repository.ancestors(commits[2], limit=2) == [commits[2], commits[1]]


def test_checkout_and_restore(remote_and_checkout):
    _, _, repository, commits = remote_and_checkout
    repository.checkout(Lines(), commits[0])
    assert git(repository.root, "rev-parse", "HEAD") == commits[0]
    assert repository.restore(commits[2]) == f"working tree back at {commits[2][:12]}"
    assert git(repository.root, "rev-parse", "HEAD") == commits[2]
    assert repository.restore(None).startswith("working tree left as it is")


def test_ssh_trusts_only_the_host_keys_the_operator_provided(remote_and_checkout):
    _, _, repository, _ = remote_and_checkout
    ssh = repository.env()["GIT_SSH_COMMAND"]
    assert "StrictHostKeyChecking=yes" in ssh and "accept-new" not in ssh
    assert f"UserKnownHostsFile={repository.settings.known_hosts}" in ssh
    assert "/var/lib/hook" not in ssh  # never on the volume the receiver can write
