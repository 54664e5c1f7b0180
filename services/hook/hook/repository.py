"""The deploy checkout and the remote it follows: fetch an exact commit, check it out, and tell how
two commits relate. Everything goes through git; commands a step runs are written to its log."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from .ledger import COMMIT_ID
from .settings import DeploySettings
from .steps import Log, StepFailed, run_command

ANCESTRY_LIMIT = 10_000  # how many of the live commit's ancestors the receiver is told about


class Repository:
    def __init__(self, root: str, branch: str, settings: DeploySettings):
        self.root = root
        self.branch = branch
        self.remote = settings.remote
        self.settings = settings

    @property
    def remote_ref(self) -> str:
        return f"{self.remote}/{self.branch}"

    def env(self) -> dict[str, str]:
        """git over SSH trusts only the host keys the operator provided (DEPLOY_KNOWN_HOSTS, mounted
        read-only into the deployer alone): never a key first seen on the way in. A deploy key is
        used when one is mounted."""
        home = "/tmp"  # noqa: S108 - a private tmpfs in the deployer's read-only container
        ssh = f"ssh -o StrictHostKeyChecking=yes -o UserKnownHostsFile={self.settings.known_hosts}"
        key = Path(self.settings.deploy_key)
        if key.is_file() and key.stat().st_size > 0:
            ssh += f" -i {key} -o IdentitiesOnly=yes"
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, "GIT_SSH_COMMAND": ssh}

    def _git(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["git", "-C", self.root, *args], capture_output=True, text=True, timeout=60, env=self.env()
        )

    def fetch(self, log: Log) -> str:
        """Fetch the branch; its tip."""
        refspec = f"+refs/heads/{self.branch}:refs/remotes/{self.remote_ref}"
        try:
            run_command(
                log,
                ["git", "-C", self.root, "fetch", "--no-tags", self.remote, refspec],
                self.settings.fetch_timeout,
                env=self.env(),
            )
        except StepFailed:
            if not Path(self.settings.known_hosts).is_file():
                log.write(
                    f"(over SSH, the remote's host key must be in {self.settings.known_hosts}: "
                    "set DEPLOY_KNOWN_HOSTS, README: Push to deploy)"
                )
            raise
        return self.resolve(self.remote_ref) or ""

    def resolve(self, ref: str) -> str | None:
        found = self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return found.stdout.strip() if found.returncode == 0 else None

    def has_commit(self, sha: str) -> bool:
        return self._git("cat-file", "-e", f"{sha}^{{commit}}").returncode == 0

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when ``descendant`` contains ``ancestor`` (a commit is its own ancestor)."""
        return self._git("merge-base", "--is-ancestor", ancestor, descendant).returncode == 0

    def checkout(self, log: Log, sha: str) -> None:
        run_command(log, ["git", "-C", self.root, "checkout", "--force", "--detach", sha], 60, env=self.env())
        # Untracked files go; ignored ones (.env, .env.d/.env.production, volumes) stay.
        run_command(log, ["git", "-C", self.root, "clean", "-d", "--force"], 60, env=self.env())

    def restore(self, sha: str | None) -> str:
        """Put the working tree back at ``sha`` after a failed deploy; says how it went."""
        if not (sha and COMMIT_ID.fullmatch(sha)):
            return "working tree left as it is (no live commit known)"
        restored = self._git("checkout", "--force", "--detach", sha)
        return f"working tree back at {sha[:12]}" if restored.returncode == 0 else "could not restore the working tree"

    def ancestors(self, sha: str, limit: int = ANCESTRY_LIMIT) -> list[str]:
        listed = self._git("rev-list", f"--max-count={limit}", sha)
        return listed.stdout.split() if listed.returncode == 0 else []
