"""Push-to-deploy as an operator has it, for the system tests of it on Compose and on Swarm: a bare
repository served by `git daemon` stands in for GitHub; a deploy checkout of it runs the production
stack with the hook profile; a source clone commits and pushes; correctly signed push events go
through nginx. Each commit is the first commit plus its own change, so no test depends on another
test's commits."""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import requests
from docker.models.containers import Container

from compose_stack import QUICK_WAITS
from contract import Api
from harness.paths import REPO_ROOT
from harness.polling import answers, until
from harness.ports import free_port
from hook.ledger import FINISHED
from hook.signatures import sign
from traffic import Traffic

REPOSITORY = "acme/flask-stack"
VERSION_FILE = "services/web/api/__init__.py"
HEALTH_FILE = "services/web/api/health/routes.py"
STORE_FILE = "services/web/api/token_store/redis_store.py"
HEALTHZ_DOCSTRING = '    """Liveness: the process answers. Touches nothing else."""\n'


def git(cwd, *args, check=True) -> str:
    result = subprocess.run(
        ["git", "-c", "user.name=Deploy Test", "-c", "user.email=deploy@example.com", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {result.stderr}")
    return result.stdout.strip()


def set_version(source: Path, version: str) -> None:
    """The app's version in the source clone (healthz tells it: which release answered)."""
    path = source / VERSION_FILE
    text = path.read_text()
    current = next(line for line in text.splitlines() if line.startswith("__version__"))
    path.write_text(text.replace(current, f'__version__ = "{version}"'))


def commit_and_push(source: Path, origin: Path, message: str) -> str:
    """Commit what changed in the source clone and push it to main on ``origin``; its id."""
    git(source, "commit", "-q", "--allow-empty", "-am", message)
    git(source, "push", "-q", str(origin), "HEAD:refs/heads/main")
    return git(source, "rev-parse", "HEAD")


def send_event(
    url: str, secret: str, payload: dict, verify: str | bool = True, event="push", delivery=None, session=None
) -> requests.Response:
    """A GitHub webhook delivery, signed with ``secret`` as GitHub signs it (through ``session``,
    when given, with its certificate checks)."""
    body = json.dumps(payload).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": sign(secret.encode(), body),
    }
    if session is not None:
        return session.post(url, data=body, headers=headers, timeout=10)
    return requests.post(url, data=body, headers=headers, verify=verify, timeout=10)


def push_payload(sha: str) -> dict:
    return {"ref": "refs/heads/main", "after": sha, "deleted": False, "repository": {"full_name": REPOSITORY}}


class DeployCheckout:
    """The deploy checkout, its stack (project ``project``), the stand-in for GitHub, and a source
    clone that pushes."""

    def __init__(self, project: str, home: Path):
        self.project = project
        self.home = home
        self.source = home / "source"
        self.origin = home / "origin.git"
        self.checkout = home / "deploy"
        self.secrets: dict[str, str] = {}
        self.https = ""
        self.ca_file = ""
        self.daemon: subprocess.Popen[bytes] | None = None
        self.https_port = 0
        self.baseline_sha = ""
        self.baseline_version = ""
        self.user_token = ""

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in {"COMPOSE_PROJECT_NAME", "HTTP_PORT", "HTTPS_PORT"}}
        return {**env, "PROD_PROJECT": self.project, "EXTRA_COMPOSE_FILES": QUICK_WAITS}

    def make(self, *targets) -> subprocess.CompletedProcess:
        return subprocess.run(["make", *targets], cwd=self.checkout, env=self.env(), capture_output=True, text=True)

    def commit(self, message: str, version: str | None = None, edit=None) -> str:
        """A new commit on the branch's tip whose tree is the first commit's plus this change only
        (what an earlier test committed, a broken health check say, does not carry over)."""
        git(self.source, "checkout", "-q", self.baseline_sha, "--", VERSION_FILE, HEALTH_FILE, STORE_FILE)
        if version:
            set_version(self.source, version)
        if edit:
            edit(self.source)
        return commit_and_push(self.source, self.origin, message)

    def send(self, payload: dict, event="push", delivery=None, secret=None) -> requests.Response:
        secret = secret or self.secrets["HOOK_SECRET"]
        return send_event(self.https + "/hooks/github", secret, payload, self.ca_file, event, delivery)

    def push_event(self, sha: str, **kwargs) -> requests.Response:
        return self.send(push_payload(sha), **kwargs)

    def push_and_wait(self, sha: str) -> dict:
        """Push ``sha`` (signed, a new delivery), and the deploy once it has finished."""
        accepted = self.push_event(sha).json()
        assert accepted["status"] == "accepted", accepted
        return self.wait_for_deploy(accepted["deploy_id"])

    def hooks_get(self, path: str) -> dict:
        response = requests.get(
            self.https + path,
            verify=self.ca_file,
            timeout=10,
            headers={"Authorization": f"Bearer {self.secrets['HOOK_STATUS_TOKEN']}"},
        )
        assert response.status_code == 200, response.text
        return response.json()

    def wait_for_deploy(self, deploy_id: int, timeout: float = 300) -> dict:
        finished = until(
            lambda: (d := self.hooks_get(f"/hooks/deploys/{deploy_id}"))["status"] in FINISHED and d,
            timeout=timeout,
            interval=1,
        )
        assert finished, (
            f"deploy {deploy_id} did not finish in {timeout}s: {self.hooks_get(f'/hooks/deploys/{deploy_id}')}"
        )
        return finished

    def knows_the_live_commit(self) -> bool:
        """The status answers (the receiver is up) and names a live commit (the deployer is)."""
        try:
            return bool(self.hooks_get("/hooks/status")["live"]["sha"])
        except (requests.RequestException, AssertionError):
            return False

    def live_sha(self) -> str:
        return until(lambda: self.hooks_get("/hooks/status")["live"]["sha"], timeout=30)

    def ensure_live_is_not_the_first_commit(self) -> None:
        """For tests that need an older commit than the live one: deploy a new one if need be."""
        if self.live_sha() != self.baseline_sha:
            return
        newer = self.commit("a newer version", version=f"1.0.1-{uuid.uuid4().hex[:6]}")
        assert self.push_and_wait(newer)["status"] == "succeeded"

    def version(self) -> str:
        return requests.get(self.https + "/api/healthz", verify=self.ca_file, timeout=10).json()["version"]

    def traffic(self) -> Traffic:
        """Clients the whole time: liveness (which tells the version), and a signed-in user's profile.
        Two of them, 40 new TLS connections a second, one every 25 ms: a switch that failed or
        held requests for longer than that would be seen. At four, the clients and the API serving
        them took more of this 2-core machine (about 110 s of CPU over push-to-deploy's deploys,
        2026-12-07) than the deploys they watch, from the lanes beside them."""
        return Traffic(
            [self.https + "/api/healthz", self.https + "/api/users/me"],
            self.ca_file,
            threads=2,
            headers={"Authorization": f"Bearer {self.user_token}"},
        )

    def prepare(self, settings: str) -> None:
        """GitHub's stand-in (a bare repository with the project's committed tree on main), the
        deploy checkout of it, and the operator's production settings there, as `make secrets`
        writes them, plus free ports, the hook, and ``settings`` (lines of NAME=value)."""
        git(self.home, "clone", "-q", str(REPO_ROOT), str(self.source))
        git(self.home, "init", "-q", "--bare", str(self.origin))
        git(self.source, "push", "-q", str(self.origin), "HEAD:refs/heads/main")
        git(self.origin, "symbolic-ref", "HEAD", "refs/heads/main")
        git(self.home, "clone", "-q", str(self.origin), str(self.checkout))
        made = subprocess.run([str(self.checkout / "compose/scripts/make-secrets.sh")], capture_output=True)
        assert made.returncode == 0, made.stderr
        self.https_port = free_port()
        (self.home / "certs").mkdir()
        (self.home / "acme").mkdir()
        with (self.checkout / ".env.d/.env.production").open("a") as production:
            production.write(
                f"COMPOSE_PROFILES=hook\nHOOK_REPOSITORY={REPOSITORY}\nHTTP_PORT={free_port()}\n"
                f"HTTPS_PORT={self.https_port}\nTLS_CERTS_DIR={self.home / 'certs'}\n"
                f"ACME_WEBROOT={self.home / 'acme'}\n{settings}"
            )
        secrets = self.checkout / ".env.d/secrets"
        self.secrets = {name.upper(): (secrets / name).read_text() for name in ("hook_secret", "hook_status_token")}
        self.baseline_sha = git(self.source, "rev-parse", "HEAD")

    def serve(self, nginx: Container, gateway: str) -> None:
        """Once the stack runs: keep the CA nginx serves, serve the stand-in for GitHub to the
        deployer over the network (at ``gateway``, the host as the deployer reaches it), and sign
        a user in whose profile the traffic asks for."""
        self.https = f"https://localhost:{self.https_port}"
        self.ca_file = str(self.home / "ca.pem")
        Path(self.ca_file).write_bytes(nginx.exec_run(["cat", "/run/nginx/tls/ca.pem"]).output)
        port = free_port()
        self.daemon = subprocess.Popen(
            [
                *("git", "daemon", "--reuseaddr", "--export-all", f"--base-path={self.home}", f"--port={port}"),
                *("--listen=0.0.0.0", str(self.home)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        git(self.checkout, "remote", "set-url", "origin", f"git://{gateway}:{port}/origin.git")
        assert until(lambda: answers(self.https + "/api/healthz", verify=self.ca_file), timeout=120), (
            "the edge does not reach web"
        )
        self.baseline_version = self.version()
        session = requests.Session()
        session.verify, session.trust_env = self.ca_file, False  # REQUESTS_CA_BUNDLE would override verify
        user = f"deploy-watcher-{uuid.uuid4().hex[:8]}@example.com"
        self.user_token = Api(session, self.https).tokens(user)["access_token"]

    def stop_serving(self) -> None:
        if self.daemon is not None:
            self.daemon.terminate()


def break_healthz(source: Path) -> None:
    path = source / HEALTH_FILE
    text = path.read_text()
    assert HEALTHZ_DOCSTRING in text
    path.write_text(
        text.replace(
            HEALTHZ_DOCSTRING, HEALTHZ_DOCSTRING + '    raise RuntimeError("this commit is deliberately unhealthy")\n'
        )
    )
