"""The releases on a host without Docker (deploy/systemd), as the deployer sees them.

    <home>/releases/<sha>/   the commit's tree (git archive: nothing untracked, no .git), its
                             `REVISION` file, and `venv`, a link to its virtualenv
    <home>/venvs/<digest>/   a virtualenv per set of pinned requirements (and interpreter), so a
                             release whose pins did not change is ready in seconds
    <home>/current           the symlink the API's unit runs (flask-stack-web.service)

The deployer owns <home>; gunicorn's user only reads it. Gunicorn is told through one privileged
command, systemctl on that one unit (the sudoers line docs/deploying.md "Without Docker" prints).
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .ledger import COMMIT_ID
from .settings import DeploySettings
from .steps import Log, StepFailed, run_command

# What gunicorn's master loads itself (its config and what that imports): a HUP does not reload
# these, only the app, so a release that changes them needs the unit restarted.
MASTER_CODE = ("gunicorn.conf.py", "runtime", "serving")
COMPLETE = ".complete"  # written last into a virtualenv: one without it was cut short


class WebAddress:
    """Where a gunicorn listens, ``unix:/path`` or ``host:port``, and one GET to it."""

    def __init__(self, address: str):
        self.address = address

    def connection(self, timeout: float) -> http.client.HTTPConnection:
        if not self.address.startswith("unix:"):
            host, _, port = self.address.rpartition(":")
            return http.client.HTTPConnection(host, int(port), timeout=timeout)
        path = self.address.removeprefix("unix:")

        class UnixConnection(http.client.HTTPConnection):
            def connect(self) -> None:
                self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                self.sock.settimeout(timeout)
                self.sock.connect(path)

        return UnixConnection("localhost", timeout=timeout)

    def get(self, path: str, timeout: float = 5) -> tuple[int, dict[str, Any]]:
        """The status and JSON body; status 0 when nothing answered."""
        connection = self.connection(timeout)
        try:
            connection.request("GET", path, headers={"Host": "localhost"})
            response = connection.getresponse()
            body = response.read()
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = {}
            return response.status, parsed if isinstance(parsed, dict) else {}
        except OSError:
            return 0, {}
        finally:
            connection.close()


def read_env_file(path: str) -> dict[str, str]:
    """An EnvironmentFile as systemd reads it: NAME=value lines, # and ; comments, quotes."""
    values: dict[str, str] = {}
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as error:
        raise StepFailed(f"the API's settings {path} cannot be read: {error.strerror}") from None
    for line in lines:
        line = line.strip()
        if not line or line.startswith(("#", ";")) or "=" not in line:
            continue
        name, value = (part.strip() for part in line.split("=", 1))
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[name] = value
    return values


def tree_digest(root: Path, names: tuple[str, ...]) -> str:
    """A digest of the files under ``root`` named by ``names`` (files or folders)."""
    digest = hashlib.sha256()
    for name in names:
        top = root / name
        found = [top] if top.is_file() else sorted(top.rglob("*"))
        files = [p for p in found if p.is_file() and "__pycache__" not in p.parts]
        for path in files:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


class HostStack:
    def __init__(self, settings: DeploySettings):
        self.settings = settings
        self.home = Path(settings.host_home)
        self.releases = self.home / "releases"
        self.venvs = self.home / "venvs"
        self.current = self.home / "current"
        self.web = WebAddress(settings.web_address)

    @property
    def root(self) -> str:
        """The repository the deployer fetches into (DEPLOY_ROOT)."""
        return self.settings.root

    def release(self, sha: str) -> Path:
        return self.releases / sha

    def live_release(self) -> Path | None:
        """The release `current` points at, if any."""
        try:
            return self.home / os.readlink(self.current)
        except OSError:
            return None

    def revision_of_running_web(self) -> str | None:
        live = self.live_release()
        return live.name if live and COMMIT_ID.fullmatch(live.name) else None

    # --- a release's files ----------------------------------------------------------------------

    def unpack(self, log: Log, sha: str) -> bool:
        """The commit's tree in its release directory; False when it was already there (an earlier
        deploy of the same commit: a rollback)."""
        release = self.release(sha)
        if release.is_dir():
            log.write(f"{release} is there already")
            return False
        self.releases.mkdir(parents=True, exist_ok=True)
        unpacking = Path(tempfile.mkdtemp(prefix=f".{sha[:12]}.", dir=self.releases))
        try:
            # tar itself: Debian 12's Python (3.11.2) has no tarfile extraction filters.
            archive = subprocess.Popen(["git", "-C", self.root, "archive", "--format=tar", sha], stdout=subprocess.PIPE)
            extract = subprocess.run(
                ["tar", "-x", "--no-same-owner", "-C", str(unpacking)],
                stdin=archive.stdout,
                capture_output=True,
                text=True,
                timeout=120,
            )
            if archive.wait(timeout=60) != 0 or extract.returncode != 0:
                raise StepFailed(f"git archive {sha[:12]} | tar -x failed: {extract.stderr.strip()[-300:]}")
            (unpacking / "services" / "web" / "REVISION").write_text(sha + "\n")
            unpacking.chmod(0o755)
            unpacking.rename(release)  # whole or not at all
        except BaseException:
            shutil.rmtree(unpacking, ignore_errors=True)
            raise
        log.write(f"{sha[:12]} unpacked into {release}")
        return True

    def remove_release(self, sha: str) -> None:
        shutil.rmtree(self.release(sha), ignore_errors=True)

    def venv(self, log: Log, sha: str, timeout: float) -> Path:
        """The release's virtualenv: the one for its pins, made now if no release had them."""
        release = self.release(sha)
        requirements = release / "services" / "web" / "requirements.txt"
        interpreter = subprocess.run(
            [self.settings.python, "-c", "import sys; print(sys.version)"], capture_output=True, text=True, check=True
        ).stdout
        digest = hashlib.sha256(requirements.read_bytes() + interpreter.encode()).hexdigest()[:16]
        venv = self.venvs / digest
        if (venv / COMPLETE).exists():
            log.write(f"the pins are those of {venv}: reused")
        else:
            shutil.rmtree(venv, ignore_errors=True)  # one cut short
            self.venvs.mkdir(parents=True, exist_ok=True)
            env = self.command_env()  # pip's cache under HOME (the deployer's unit: the releases' home)
            # Made where it stays: a virtualenv's scripts name its path.
            run_command(log, [self.settings.python, "-m", "venv", str(venv)], 120, env=env)
            pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-input"]
            run_command(log, [*pip, "--require-hashes", "-r", str(requirements)], timeout, env=env)
            (venv / COMPLETE).touch()
        link = release / "venv"
        if not link.is_symlink():
            link.symlink_to(venv)
        # Compiled now, by the deployer: the API's user cannot write the release.
        run_command(
            log,
            [str(venv / "bin" / "python"), "-m", "compileall", "-q", str(release / "services" / "web")],
            timeout,
            env=self.command_env(),
            check=False,
        )
        return venv

    def command_env(self) -> dict[str, str]:
        """What a command the deployer runs is given: PATH, HOME, and pip's own settings (the index,
        certificates an operator configured for the deployer)."""
        passed = {k: v for k, v in os.environ.items() if k.startswith("PIP_")}
        home = os.environ.get("HOME") or str(self.home)
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": home, **passed}

    def app_env(self, sha: str) -> dict[str, str]:
        """The API's own settings, as its unit is given them, for `flask deploy` and the check."""
        return {
            **self.command_env(),
            "APP_ENV": "production",
            **read_env_file(self.settings.app_env_file),
            "APP_REVISION": sha,
        }

    def app_command(self, sha: str, *argv: str) -> list[str]:
        return [str(self.release(sha) / "venv" / "bin" / argv[0]), *argv[1:]]

    def app_dir(self, sha: str) -> str:
        return str(self.release(sha) / "services" / "web")

    # --- the check before the switch ------------------------------------------------------------

    @contextmanager
    def candidate(self, log: Log, sha: str) -> Iterator[WebAddress]:
        """The release's own gunicorn (one worker, preloaded) on a socket no one else knows of."""
        with tempfile.TemporaryDirectory(prefix="flask-stack-check.") as private:
            address = WebAddress(f"unix:{private}/web.sock")
            env = {
                **self.app_env(sha),
                "GUNICORN_BIND": address.address,
                "GUNICORN_WORKERS": "1",
                "GUNICORN_PRELOAD": "true",
                "METRICS_PORT": "0",
            }
            output = Path(private) / "output"
            with output.open("w") as sink:
                process = subprocess.Popen(
                    self.app_command(sha, "gunicorn", "-c", "gunicorn.conf.py", "api:create_app()"),
                    cwd=self.app_dir(sha),
                    env=env,
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                )
            try:
                yield address
            except StepFailed:
                if process.poll() is not None:
                    log.write(f"gunicorn exited with {process.returncode}")
                log.write("its last lines:\n" + "\n".join(output.read_text(errors="replace").splitlines()[-30:]))
                raise
            finally:
                process.terminate()
                try:
                    process.wait(timeout=self.settings.stop_timeout)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()

    # --- the switch ----------------------------------------------------------------------------

    def point_current_at(self, sha: str) -> None:
        """`current` to the release, in one rename: never missing, never half-made."""
        pointing = self.home / ".current.new"
        pointing.unlink(missing_ok=True)
        pointing.symlink_to(Path("releases") / sha)
        pointing.replace(self.current)

    def needs_restart(self, old: Path | None, new: Path) -> bool:
        """A HUP gives new workers the new app, but the master keeps its interpreter, packages and
        own code: those changing (or no release serving yet) take a restart of the unit."""
        if old is None or not old.is_dir():
            return True
        if (old / "venv").resolve() != (new / "venv").resolve():
            return True
        return tree_digest(old / "services" / "web", MASTER_CODE) != tree_digest(new / "services" / "web", MASTER_CODE)

    def tell_gunicorn(self, log: Log, restart: bool) -> None:
        verb = "restart" if restart else "reload"
        run_command(log, [*self.settings.systemctl, verb, self.settings.web_unit], self.settings.start_timeout)

    # --- what stays ----------------------------------------------------------------------------

    def prune(self, log: Log, keep: set[str]) -> None:
        """Releases beyond ``keep`` (and the newest keep_releases), then virtualenvs no release uses."""
        releases = sorted(
            (p for p in self.releases.iterdir() if COMMIT_ID.fullmatch(p.name)),
            key=lambda p: p.stat().st_mtime,
            reverse=True,
        )
        kept = {p.name for p in releases[: self.settings.keep_releases]} | keep
        for release in releases:
            if release.name not in kept:
                shutil.rmtree(release)
                log.write(f"removed release {release.name[:12]}")
        used = {(p / "venv").resolve() for p in self.releases.iterdir() if (p / "venv").is_symlink()}
        for venv in self.venvs.iterdir() if self.venvs.is_dir() else ():
            if venv.resolve() not in used:
                shutil.rmtree(venv)
                log.write(f"removed virtualenv {venv.name} (no release uses its pins)")
