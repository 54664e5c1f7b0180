"""deploy/install-host.sh on a fresh Debian, as a sysadmin runs it (docs/deploying.md "Without Docker"), then
a push deployed through the host's nginx and the hook's receiver and deployer.

The host is a container of the Debian image. systemd cannot be its PID 1 here (the engine starts no
privileged container), so the script runs with NO_START=1 and the test starts each service as its
unit says, reading the installed unit's own lines (user, environment files, Environment=,
ExecStart=); the one stand-in is `systemctl` for the API's unit, which does what that unit's
ExecStart and ExecReload do. Everything else is real: Debian's nginx, PostgreSQL, Redis, sudo with
the sudoers line the script installs, git, pip, gunicorn."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from deploy_checkout import REPOSITORY, commit_and_push, git, push_payload, send_event, set_version
from docker_env import LABELS, base_image, docker_client_or_skip, ensure_image
from harness.paths import REPO_ROOT
from harness.polling import until
from harness.ports import free_port
from hook.ledger import FINISHED
from traffic import NamedHostAdapter, Traffic

# What the API's unit does, for the deployer's sudo: ExecStart (as the unit's user, with its
# EnvironmentFile and Environment= lines, on the socket the .socket unit would hold) and ExecReload.
SYSTEMCTL_STAND_IN = r"""#!/bin/sh
set -eu
[ "$2" = flask-stack-web.service ] || { echo "only flask-stack-web.service" >&2; exit 1; }
unit=/etc/systemd/system/flask-stack-web.service
pidfile=/run/flask-stack-web/gunicorn.pid
running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
case "$1" in
  reload) kill -HUP "$(cat "$pidfile")" ;;
  restart)
    if running; then kill -TERM "$(cat "$pidfile")"; while running; do sleep 0.2; done; fi
    install -d -o flask-stack -g flask-stack -m 0750 /run/flask-stack-web
    # As flask-stack-web.socket makes it: a socket group flask-stack-socket may use (here gunicorn
    # binds it, as its own user, so the folder is its).
    install -d -o flask-stack -g flask-stack-socket -m 0750 /run/flask-stack
    set -a; . /etc/flask-stack/env.production
    eval "$(sed -n 's/^Environment=//p' "$unit")"; set +a
    cd "$(sed -n 's/^WorkingDirectory=//p' "$unit")"
    set -f
    # shellcheck disable=SC2046
    set -- $(sed -n 's/^ExecStart=//p' "$unit")
    runuser -u flask-stack -- "$@" --bind unix:/run/flask-stack/web.sock --umask 0007 --pid "$pidfile" --daemon \
      --capture-output --error-logfile /run/flask-stack-web/output.log
    tries=0
    until running && [ -S /run/flask-stack/web.sock ]; do
      tries=$((tries + 1)); [ "$tries" -lt 300 ] || { tail -n 30 /run/flask-stack-web/output.log >&2; exit 1; }
      sleep 0.2
    done
    # The socket unit's SocketGroup and SocketMode (gunicorn gives the socket its own group).
    chgrp flask-stack-socket /run/flask-stack/web.sock
    chmod 0660 /run/flask-stack/web.sock ;;
  *) echo "unknown verb $1" >&2; exit 1 ;;
esac
"""

# A service as its unit runs it: user, environment, working directory, command, in the background.
RUN_AS_UNIT = r"""
unit=/etc/systemd/system/$1
set -a
for file in $(sed -n 's/^EnvironmentFile=//p' "$unit"); do . "$file"; done
eval "$(sed -n 's/^Environment=//p' "$unit")"
set +a
export PIP_CERT=/etc/ssl/certs/ca-certificates.crt
cd "$(sed -n 's/^WorkingDirectory=//p' "$unit")"
umask "$(sed -n 's/^UMask=//p' "$unit")"
set -f
# shellcheck disable=SC2046
set -- "$(sed -n 's/^User=//p' "$unit")" $(sed -n 's/^ExecStart=//p' "$unit")
user=$1; shift
groups=$(sed -n 's/^SupplementaryGroups=/-G /p' "$unit" | sed 's/ \([a-z]\)/ -G \1/2g')
nohup runuser -u "$user" -g "$(sed -n 's/^Group=//p' "$unit")" $groups -- "$@" > "/var/log/${unit##*/}.log" 2>&1 &
"""


INSTALL_ENV = {"NO_START": "1", "PIP_CERT": "/etc/ssl/certs/ca-certificates.crt"}


class Host:
    def __init__(self, container, home: Path, source: Path):
        self.container = container
        self.home = home
        self.source = source
        self.address = ""
        self.session = requests.Session()
        self.session.trust_env = False

    def run(self, script: str, *args: str, env: dict | None = None, check: bool = True) -> str:
        result = self.container.exec_run(["sh", "-c", script, "sh", *args], environment=env or {})
        output = result.output.decode(errors="replace")
        if check:
            assert result.exit_code == 0, f"{script[:200]}\n{output[-4000:]}"
        return output

    def url(self, path: str) -> str:
        return f"https://{self.address}{path}"

    def request(self, method: str, path: str) -> requests.Response:
        """Through the host's nginx over HTTPS, checking its certificate for the name it was made for."""
        return self.session.request(method, self.url(path), timeout=10, allow_redirects=False)

    def deploys(self) -> dict:
        # As the deployer, as README says: a root process could leave root's journal files behind.
        status = self.run(
            "cd /opt/flask-stack/hook && HOOK_DB=/var/lib/flask-stack-hook/hook.sqlite "
            "runuser -u flask-stack-deploy -- sh -c 'umask 002; exec venv/bin/python -m hook status'"
        )
        return json.loads(status)

    def deploy_of(self, sha: str, timeout: float = 300) -> dict:
        """The deploy of ``sha`` once it has finished, however it ended."""

        def finished() -> dict | None:
            return next((d for d in self.deploys()["recent"] if d["sha"] == sha and d["status"] in FINISHED), None)

        found = until(finished, timeout=timeout, interval=1)
        assert found, f"no deploy of {sha} finished in {timeout:.0f}s\n{self.deployer_log()}"
        return found

    def deployer_log(self) -> str:
        return self.log_of("flask-stack-deployer.service")

    def log_of(self, unit: str) -> str:
        return self.run(f"tail -n 60 /var/log/{unit}.log", check=False)

    def push(self, message: str, version: str) -> str:
        set_version(self.source, version)
        return commit_and_push(self.source, self.home / "origin.git", message)


@pytest.fixture(scope="module")
def host(tmp_path_factory) -> Iterator[Host]:
    client = docker_client_or_skip()
    image = base_image("DEBIAN_IMAGE")
    ensure_image(client, image)
    home = tmp_path_factory.mktemp("install-host")
    source = home / "source"
    git(home, "clone", "-q", str(REPO_ROOT), str(source))
    git(home, "clone", "-q", "--bare", str(source), str(home / "origin.git"))
    port = free_port()
    daemon = subprocess.Popen(
        ["git", "daemon", "--reuseaddr", "--export-all", f"--base-path={home}", f"--port={port}", "--listen=0.0.0.0"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    container = client.containers.run(
        image,
        ["sleep", "infinity"],
        detach=True,
        name=f"flask-stack-install-host-{uuid.uuid4().hex[:8]}",
        labels=LABELS,
        volumes={str(source): {"bind": "/src", "mode": "ro"}},
        # The ledger's folder shares files between two users through its setgid bit, which the
        # engine's fuse-overlayfs ignores here (a host's own filesystem keeps it): a tmpfs does not.
        tmpfs={"/var/lib/flask-stack-hook": ""},
    )
    made = Host(container, home, source)
    try:
        container.reload()
        network = next(iter(container.attrs["NetworkSettings"]["Networks"].values()))
        made.address, gateway = network["IPAddress"], network["Gateway"]
        try:
            extra_ca = base_image("EXTRA_CA_CERTS")  # the host's extra certificates (.env), for pip
        except KeyError:
            extra_ca = ""
        made.run('printf "%b" "$1" > /usr/local/share/ca-certificates/extra.crt', extra_ca)
        made.install_output = made.run(
            '/src/deploy/install-host.sh --repository "$1" --server-name localhost --local-services',
            f"git://{gateway}:{port}/origin.git",
            env={**INSTALL_ENV, "HOOK_REPOSITORY": REPOSITORY},
        )
        ca_file = home / "host-ca.pem"
        ca_file.write_text(made.run("cat /etc/flask-stack/tls/fullchain.pem"))
        made.session.verify = str(ca_file)
        made.session.mount("https://", NamedHostAdapter("localhost"))
        yield made
    finally:
        container.remove(force=True)
        daemon.terminate()
        daemon.wait()


def test_the_install_lays_out_least_privilege_and_a_second_run_keeps_the_secrets(host):
    assert "is queued: the deployer makes it live" in host.install_output
    assert [d["status"] for d in host.deploys()["queue"]] == ["queued"], "the branch's tip is the first release"
    modes = host.run(
        "stat -c '%n %U:%G %a' /etc/flask-stack /etc/flask-stack/env.production /etc/flask-stack/hook.env "
        "/etc/flask-stack/deployer.env /etc/flask-stack/tls/privkey.pem /etc/sudoers.d/flask-stack "
        "/opt/flask-stack/hook /srv/flask-stack /var/lib/flask-stack-hook"
    ).split("\n")
    assert modes[:-1] == [
        "/etc/flask-stack root:flask-stack 750",
        "/etc/flask-stack/env.production root:flask-stack 640",
        "/etc/flask-stack/hook.env root:root 600",
        "/etc/flask-stack/deployer.env root:root 600",
        "/etc/flask-stack/tls/privkey.pem root:root 600",
        "/etc/sudoers.d/flask-stack root:root 440",
        "/opt/flask-stack/hook root:root 755",
        "/srv/flask-stack flask-stack-deploy:flask-stack-deploy 755",
        "/var/lib/flask-stack-hook flask-stack-hook:flask-stack-hook 2770",
    ]
    # Each user can do its own part and nothing more.
    refused = {
        "flask-stack-hook": "cat /etc/flask-stack/env.production",  # the API's secrets
        "flask-stack": "touch /srv/flask-stack/releases/x",  # its own code
        "flask-stack-deploy": "touch /opt/flask-stack/hook/x",  # the deployer's own code
    }
    for user, command in refused.items():
        assert host.run(f"runuser -u {user} -- {command}", check=False).strip(), f"{user} may {command}"
        assert "Permission denied" in host.run(f"runuser -u {user} -- {command} 2>&1; true")
    # Redis lets no local account in but the app's user (Debian's passwordless default user is off).
    for user in ("flask-stack-hook", "www-data"):
        answered = host.run(f"runuser -u {user} -- redis-cli SET auth:profile:1 forged 2>&1; true")
        assert "OK" not in answered and ("NOAUTH" in answered or "WRONGPASS" in answered), answered
    allowed = host.run("sudo -l -U flask-stack-deploy")
    assert "(root) NOPASSWD: /usr/bin/systemctl reload flask-stack-web.service, /usr/bin/systemctl restart" in allowed
    assert "ALL\n" not in allowed.split("may run the following commands")[1].replace("(root)", "")
    assert host.run("nginx -t 2>&1").count("successful") == 1

    keys = "sha256sum /etc/flask-stack/env.production /etc/flask-stack/hook.env /etc/flask-stack/tls/privkey.pem"
    before = host.run(keys)
    host.run(
        '/src/deploy/install-host.sh --repository "$(git -C /srv/flask-stack/repo remote get-url origin)" '
        "--server-name localhost --local-services",
        env=INSTALL_ENV,
    )
    assert host.run(keys) == before, "a second run keeps the settings and secrets it made"


def test_the_first_release_and_a_push_serve_through_the_hosts_nginx(host):
    host.run("install -m 0755 /dev/stdin /usr/bin/systemctl <<'EOF'\n" + SYSTEMCTL_STAND_IN + "EOF\n")
    for unit in ("flask-stack-hook.service", "flask-stack-deployer.service"):
        host.run(RUN_AS_UNIT, unit)
    host.run("nginx")
    receiver_up = until(lambda: host.request("GET", "/hooks/healthz").status_code == 200, timeout=60)
    assert receiver_up, host.log_of("flask-stack-hook.service")
    tip = git(host.source, "rev-parse", "HEAD")
    assert host.deploy_of(tip)["status"] == "succeeded", host.deployer_log()

    healthz = host.request("GET", "/api/healthz")
    assert healthz.status_code == 200 and healthz.json()["revision"] == tip
    for header in ("Strict-Transport-Security", "Content-Security-Policy", "X-Content-Type-Options", "X-Request-ID"):
        assert header in healthz.headers, (header, healthz.headers)
    index = host.request("GET", "/some/client/route")
    assert index.status_code == 200 and "<html" in index.text.lower() and index.headers["Cache-Control"] == "no-cache"
    missing = host.request("GET", "/api/no-such-thing")
    assert missing.status_code == 404 and missing.json()["error"]["code"], missing.text
    refused = host.request("DELETE", "/index.html")
    assert refused.status_code == 405 and refused.json()["error"]["code"], refused.text
    redirect = requests.get(f"http://{host.address}/api/healthz", allow_redirects=False, timeout=10)
    assert redirect.status_code == 308 and redirect.headers["Location"].startswith("https://")

    secret = host.run('. /etc/flask-stack/hook.env && printf %s "$HOOK_SECRET"')
    pushed = host.push("a push to a host without Docker", "9.9.9-host")
    with Traffic(
        [host.url("/api/healthz")],
        host.session.verify,
        keep_alive=True,
        retry_closed_idle=True,
        server_name="localhost",
    ) as traffic:
        accepted = send_event(host.url("/hooks/github"), secret, push_payload(pushed), session=host.session)
        assert accepted.status_code == 202 and accepted.json()["status"] == "accepted", accepted.text
        assert host.deploy_of(pushed)["status"] == "succeeded", host.deployer_log()
        assert until(lambda: traffic.answered() and traffic.answered()[-1].detail == "9.9.9-host", timeout=30)
    assert not traffic.failures, traffic.summary()

    host.run('kill "$(cat /run/flask-stack-web/gunicorn.pid)"')
    # Once gunicorn's workers have finished (nginx's kept connections to them close with them):
    assert until(lambda: host.request("GET", "/api/healthz").status_code == 502, timeout=60), "still answering"
    assert host.request("GET", "/api/healthz").json()["error"]["code"] == "service_unavailable"
