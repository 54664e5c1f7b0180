"""Releases on a host without Docker (deploy/systemd) as the hook's deployer makes them: the real
deployer, git, pip, `flask deploy`, gunicorn, Postgres and Redis, under load. Only systemd is
stood in for (it cannot run here: the engine starts no privileged container), by a `systemctl`
that does what flask-stack-web.service does: `reload` sends gunicorn's master HUP, `restart` stops
it and starts the current release's gunicorn as the unit's ExecStart does."""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from contract import Api
from deploy_checkout import commit_and_push, git, set_version
from harness.paths import REPO_ROOT
from harness.polling import until
from harness.ports import free_port
from hook.deployer import deploy_one
from hook.hooks import Hook
from hook.host import HostStack
from hook.ledger import Ledger
from hook.settings import DeploySettings, HookSettings
from traffic import Traffic

FAKE_SYSTEMCTL = '''\
#!{python}
"""systemctl VERB flask-stack-web.service, as the unit would do it."""
import os, signal, subprocess, sys, time
from pathlib import Path

verb, unit = sys.argv[1:3]
assert unit == "flask-stack-web.service", unit
home, pidfile = Path({home!r}), Path({pidfile!r})
with open({calls!r}, "a") as calls:
    calls.write(verb + "\\n")


def running():
    try:
        pid = int(pidfile.read_text())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


if verb == "reload":
    os.kill(running(), signal.SIGHUP)
elif verb == "restart":
    if pid := running():
        os.kill(pid, signal.SIGTERM)
        while running():
            time.sleep(0.1)
    env = {{"PATH": os.environ["PATH"], "APP_ENV": "production", "GUNICORN_PRELOAD": "false",
            "GUNICORN_BIND": {bind!r}}}
    for line in Path({env_file!r}).read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value
    web = home / "current" / "services" / "web"
    subprocess.Popen(
        [str(home / "current" / "venv" / "bin" / "gunicorn"), "--chdir", str(web), "-c", "gunicorn.conf.py",
         "--pid", str(pidfile), "api:create_app()"],
        cwd=web, env=env, start_new_session=True,
        stdout=open({output!r}, "a"), stderr=subprocess.STDOUT,
    )
    while not running():
        time.sleep(0.1)
else:
    sys.exit(f"unknown verb {{verb}}")
'''


@dataclass
class Host:
    home: Path
    source: Path
    baseline: str
    origin: Path
    settings: HookSettings
    ledger: Ledger
    base: str
    pidfile: Path
    calls: Path
    output: Path

    def commit(self, message: str, version: str, edit=None) -> str:
        """A commit on main: the first commit's tree with ``version`` and ``edit``'s change."""
        git(self.source, "checkout", "-q", self.baseline, "--", ".")
        set_version(self.source, version)
        if edit:
            edit(self.source)
        return commit_and_push(self.source, self.origin, message)

    def deploy(self, sha: str, kind: str = "push") -> tuple[str, str, dict]:
        decision = self.ledger.enqueue("host", sha, "refs/heads/main", kind=kind)
        assert decision.outcome == "accepted", decision
        row = self.ledger.claim_next()
        assert row is not None
        stack = HostStack(self.settings.deploy)
        result = deploy_one(self.ledger, row, self.settings, stack)
        return result.status, result.reason, self.ledger.deploy(row["id"]) or {}

    def healthz(self) -> dict:
        return requests.get(f"{self.base}/api/healthz", timeout=5).json()

    def current(self) -> str:
        return os.readlink(self.home / "current")

    def verbs(self) -> list[str]:
        return self.calls.read_text().split() if self.calls.exists() else []


@pytest.fixture
def host(tmp_path, platform_urls, settings) -> Iterator[Host]:
    """/srv/flask-stack in a temporary folder: GitHub's stand-in (a bare repository with the
    project's committed tree), the deployer's clone of it, the API's settings file, and systemctl."""
    home, source, origin = tmp_path / "srv", tmp_path / "source", tmp_path / "origin.git"
    home.mkdir()
    git(tmp_path, "clone", "-q", str(REPO_ROOT), str(source))
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(source, "push", "-q", str(origin), "HEAD:refs/heads/main")
    git(tmp_path, "clone", "-q", str(origin), str(home / "repo"))
    database_url, redis_url = platform_urls
    env_file = tmp_path / "env.production"
    env_file.write_text(
        f"DATABASE_URL={database_url}\nREDIS_URL={redis_url}\nREDIS_KEY_PREFIX={settings['REDIS_KEY_PREFIX']}\n"
        f"FLASK_SECRET_KEY={secrets.token_urlsafe(32)}\nJWT_SECRET_KEY={secrets.token_urlsafe(32)}\n"
        "GUNICORN_WORKERS=2\nTRUSTED_PROXY_HOPS=0\n"
    )
    port = free_port()
    pidfile, calls, output = tmp_path / "gunicorn.pid", tmp_path / "systemctl.calls", tmp_path / "gunicorn.log"
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(
        FAKE_SYSTEMCTL.format(
            python=sys.executable,
            home=str(home),
            pidfile=str(pidfile),
            calls=str(calls),
            bind=f"127.0.0.1:{port}",
            env_file=str(env_file),
            output=str(output),
        )
    )
    systemctl.chmod(0o755)
    deploy = DeploySettings(
        root=str(home / "repo"),
        target="systemd",
        host_home=str(home),
        app_env_file=str(env_file),
        web_address=f"127.0.0.1:{port}",
        python=sys.executable,
        systemctl=(str(systemctl),),
        verify_seconds=2,
        verify_max_5xx=2,
        poll_interval=0.2,
        health_timeout=60,
        keep_releases=1,
    )
    hook = Hook(id="host", secrets=(), branch="main", repository="acme/flask-stack", command="deploy")
    hook_settings = HookSettings(hooks={"host": hook}, ledger_path=str(tmp_path / "hook.sqlite"), deploy=deploy)
    ledger = Ledger(hook_settings.ledger_path)
    ledger.create()
    baseline = git(source, "rev-parse", "HEAD")
    base = f"http://127.0.0.1:{port}"
    made = Host(home, source, baseline, origin, hook_settings, ledger, base, pidfile, calls, output)
    yield made
    with contextlib.suppress(OSError, ValueError):
        os.kill(int(pidfile.read_text()), signal.SIGTERM)


def break_the_import(source: Path) -> None:
    """A release whose app cannot even be imported (a typo, a missing package)."""
    path = source / "services/web/api/__init__.py"
    path.write_text(path.read_text() + "\nraise RuntimeError('this release is broken')\n")


def break_readiness(source: Path) -> None:
    """A release that starts but cannot use its database (a wrong query, a wrong setting)."""
    path = source / "services/web/api/health/routes.py"
    text = path.read_text()
    path.write_text(text.replace('_check("database", database.check_ready)', '_check("database", lambda: 1 / 0)'))
    assert path.read_text() != text


def fail_readiness_after_two_probes(source: Path) -> None:
    """A release that passes its check, then, once live, fails readiness in every worker (as one
    that leaks its database connections would)."""
    path = source / "services/web/api/health/routes.py"
    text = path.read_text()
    path.write_text(
        text.replace('_check("database", database.check_ready)', '_check("database", _ready_twice)')
        + "\n\n_PROBES: list[int] = []\n\n\ndef _ready_twice() -> None:\n    _PROBES.append(1)\n"
        + "    if len(_PROBES) > 2:\n        raise RuntimeError('out of connections')\n    database.check_ready()\n"
    )
    assert path.read_text() != text


def change_gunicorns_settings(source: Path) -> None:
    """A change to what gunicorn's master runs itself: a HUP would not load it."""
    path = source / "services/web/gunicorn.conf.py"
    path.write_text(path.read_text() + "\n# tuned for this host\n")


# Each bad release, and the step that stops it.
BAD_RELEASES = [
    (break_the_import, "migrate", "this release is broken"),
    (break_readiness, "check", "ZeroDivisionError"),
]


def test_releases_go_live_under_load_bad_ones_are_not_kept_live_and_a_rollback_switches_back(host):
    first = host.commit("the first release", "1.0.0-host")
    status, reason, record = host.deploy(first)
    assert status == "succeeded", textwrap.shorten(str(record), 4000)
    assert host.current() == f"releases/{first}"
    assert host.healthz()["revision"] == first and host.healthz()["version"] == "1.0.0-host"
    assert host.verbs() == ["restart"], "nothing served: the unit is (re)started"

    api = Api(requests.Session(), host.base)
    token = api.tokens("host@example.com")["access_token"]
    second = host.commit("a new version", "1.1.0-host")
    with Traffic(
        [f"{host.base}/api/healthz", f"{host.base}/api/users/me"],
        "",
        headers={"Authorization": f"Bearer {token}"},
        keep_alive=True,
        retry_closed_idle=True,
    ) as traffic:
        status, reason, record = host.deploy(second)
        assert status == "succeeded", textwrap.shorten(str(record), 4000)
        assert until(lambda: host.healthz()["version"] == "1.1.0-host", timeout=30)
        time.sleep(1)
    assert traffic.sent > 100
    assert not traffic.failures, traffic.summary()
    assert {o.detail for o in traffic.answered("/api/healthz")} == {"1.0.0-host", "1.1.0-host"}
    assert host.verbs() == ["restart", "reload"], "the same pins and master code: a graceful reload"
    venvs = list((host.home / "venvs").iterdir())
    assert len(venvs) == 1, "the second release reused the first one's virtualenv"

    for number, (breaking, step, said) in enumerate(BAD_RELEASES):
        broken = host.commit(f"a bad release: {breaking.__doc__}", f"1.2.{number}-host", edit=breaking)
        with Traffic([f"{host.base}/api/healthz"], "", keep_alive=True) as traffic:
            status, reason, record = host.deploy(broken)
        assert status == "failed" and reason.startswith(f"{step}:"), reason
        assert said in str(record), "what stopped it is in the deploy's log"
        assert host.current() == f"releases/{second}", "`current` never moved"
        assert not (host.home / "releases" / broken).exists(), "the bad release was removed"
        assert not traffic.failures and {o.detail for o in traffic.answered()} == {"1.1.0-host"}, traffic.summary()
        assert host.verbs() == ["restart", "reload"], "gunicorn was never told"

    # A release that fails only once it is live: switched back, and gunicorn told again.
    leaky = host.commit("a release that fails after the switch", "1.3.0-host", edit=fail_readiness_after_two_probes)
    with Traffic([f"{host.base}/api/healthz"], "", keep_alive=True, retry_closed_idle=True) as traffic:
        status, reason, record = host.deploy(leaky)
        time.sleep(1)
    assert status == "rolled_back" and reason.startswith("verify:"), textwrap.shorten(str(record), 6000)
    assert "failed its readiness check" in reason and f"switched back to {second[:12]}" in reason, reason
    assert host.current() == f"releases/{second}" and host.healthz()["revision"] == second
    assert host.verbs() == ["restart", "reload", "reload", "reload"], "switched, then switched back"
    assert not traffic.failures, traffic.summary()
    versions = [o.detail for o in traffic.answered("/api/healthz")]
    assert set(versions) == {"1.1.0-host", "1.3.0-host"} and versions[-1] == "1.1.0-host", traffic.summary()

    with Traffic([f"{host.base}/api/healthz"], "", keep_alive=True, retry_closed_idle=True) as traffic:
        status, reason, record = host.deploy(first, kind="rollback")
    assert status == "succeeded", textwrap.shorten(str(record), 4000)
    assert "is there already" in str(record), "a rollback reuses the release it kept"
    assert host.current() == f"releases/{first}" and host.healthz()["version"] == "1.0.0-host"
    assert not traffic.failures, traffic.summary()
    assert api.me(token).status_code == 200, "the session survived every switch"
    kept = sorted(p.name for p in (host.home / "releases").iterdir())
    assert kept == sorted([first, second, leaky]), "the live release, the one before it, and the newest stay"

    # gunicorn's own settings changed: its master is restarted (with no traffic: the stand-in
    # systemctl does not hold the socket through a restart as systemd's socket unit does).
    master = int(host.pidfile.read_text())
    tuned = host.commit("gunicorn's settings changed", "1.4.0-host", edit=change_gunicorns_settings)
    status, reason, record = host.deploy(tuned)
    assert status == "succeeded", textwrap.shorten(str(record), 4000)
    assert host.verbs()[-1] == "restart" and int(host.pidfile.read_text()) != master
    assert host.healthz()["version"] == "1.4.0-host" and api.me(token).status_code == 200
