"""The hook service's settings: read from the environment once, at start, and passed down.

The receiver and the deployer share this module; each reads only what it needs, and only the
receiver is given the webhook secrets (``with_secrets``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .hooks import ConfigError, Hook, load_hooks

# Files the operator provides, mounted read-only into the deployer only (compose/hook.yml); on a
# host, DEPLOY_KEY_FILE and DEPLOY_KNOWN_HOSTS_FILE name them.
DEPLOY_KEY = "/run/secrets/deploy-key"
KNOWN_HOSTS = "/run/secrets/known_hosts"


def _seconds(environ: Mapping[str, str], name: str, default: float) -> float:
    raw = environ.get(name) or ""
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a number of seconds") from None


def _secret(environ: Mapping[str, str], name: str) -> str:
    """``NAME_FILE``'s content (a Docker secret), or ``NAME``."""
    path = environ.get(f"{name}_FILE")
    if not path:
        return environ.get(name) or ""
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise ConfigError(f"{name}_FILE={path!r} cannot be read: {error.strerror}") from None


def _count(environ: Mapping[str, str], name: str, default: int) -> int:
    raw = environ.get(name) or ""
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not a whole number") from None


TARGETS = ("compose", "systemd")


def target(environ: Mapping[str, str]) -> str:
    """What runs the stack: Docker (Compose, or Swarm, which the deployer tells from its own
    container) or systemd on a host without Docker."""
    chosen = environ.get("DEPLOY_TARGET") or "compose"
    if chosen not in TARGETS:
        raise ConfigError(f"DEPLOY_TARGET={chosen!r} is not one of {', '.join(TARGETS)}")
    return chosen


@dataclass(frozen=True)
class DeploySettings:
    """How the deployer works: where the repository is, how long each step may take, what it keeps."""

    root: str
    remote: str = "origin"
    fetch_timeout: float = 120
    build_timeout: float = 900
    migrate_timeout: float = 300
    start_timeout: float = 120
    health_timeout: float = 120
    # After the switch, how long the new version is watched before the old one is stopped, and how
    # many 5xx answers (nginx's log, 503 excepted) it may give meanwhile.
    verify_seconds: float = 30
    verify_max_5xx: int = 10
    drain_timeout: float = 40
    stop_timeout: int = 30
    # On Swarm: how long Swarm's update of web may take, every task replaced (or rolled back).
    roll_timeout: float = 900
    poll_interval: float = 1
    keep_images: int = 3
    deploy_key: str = DEPLOY_KEY
    known_hosts: str = KNOWN_HOSTS
    # On Swarm: the env files `make swarm` used (absolute; the production settings last), and the
    # registry (host:port) every node pulls images from, if the swarm has more than one node.
    env_files: tuple[str, ...] = ()
    registry: str = ""
    # On a host without Docker (deploy/systemd, DEPLOY_TARGET=systemd): where the releases live
    # (releases/, venvs/, the `current` symlink), the API's settings file, where gunicorn listens,
    # the interpreter the virtualenvs are made with, and the one privileged command (sudoers): the
    # unit's graceful reload, or its restart when gunicorn's master must load new code itself.
    target: str = "compose"
    host_home: str = "/srv/flask-stack"
    app_env_file: str = "/etc/flask-stack/env.production"
    web_address: str = "unix:/run/flask-stack/web.sock"
    python: str = "/usr/bin/python3"
    systemctl: tuple[str, ...] = ("sudo", "-n", "/usr/bin/systemctl")
    web_unit: str = "flask-stack-web.service"
    keep_releases: int = 5

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> DeploySettings:
        root = environ.get("DEPLOY_ROOT") or ""
        env_files = tuple((environ.get("DEPLOY_ENV_FILES") or "").split()) or (
            f"{root}/.env",
            f"{root}/.env.d/.env.production",
        )
        return cls(
            root=root,
            remote=environ.get("DEPLOY_GIT_REMOTE") or "origin",
            fetch_timeout=_seconds(environ, "DEPLOY_FETCH_TIMEOUT", 120),
            build_timeout=_seconds(environ, "DEPLOY_BUILD_TIMEOUT", 900),
            migrate_timeout=_seconds(environ, "DEPLOY_MIGRATE_TIMEOUT", 300),
            start_timeout=_seconds(environ, "DEPLOY_START_TIMEOUT", 120),
            health_timeout=_seconds(environ, "DEPLOY_HEALTH_TIMEOUT", 120),
            verify_seconds=_seconds(environ, "DEPLOY_VERIFY_SECONDS", 30),
            verify_max_5xx=_count(environ, "DEPLOY_VERIFY_MAX_5XX", 10),
            drain_timeout=_seconds(environ, "DEPLOY_DRAIN_TIMEOUT", 40),
            stop_timeout=_count(environ, "DEPLOY_STOP_TIMEOUT", 30),
            roll_timeout=_seconds(environ, "DEPLOY_ROLL_TIMEOUT", 900),
            poll_interval=_seconds(environ, "DEPLOY_POLL_INTERVAL", 1),
            keep_images=_count(environ, "DEPLOY_KEEP_IMAGES", 3),
            env_files=env_files,
            registry=environ.get("DEPLOY_REGISTRY") or "",
            deploy_key=environ.get("DEPLOY_KEY_FILE") or DEPLOY_KEY,
            known_hosts=environ.get("DEPLOY_KNOWN_HOSTS_FILE") or KNOWN_HOSTS,
            target=target(environ),
            host_home=environ.get("DEPLOY_HOST_HOME") or cls.host_home,
            app_env_file=environ.get("DEPLOY_APP_ENV_FILE") or cls.app_env_file,
            web_address=environ.get("DEPLOY_WEB_ADDRESS") or cls.web_address,
            python=environ.get("DEPLOY_PYTHON") or cls.python,
            systemctl=tuple((environ.get("DEPLOY_SYSTEMCTL") or "").split()) or cls.systemctl,
            web_unit=environ.get("DEPLOY_WEB_UNIT") or cls.web_unit,
            keep_releases=_count(environ, "DEPLOY_KEEP_RELEASES", 5),
        )


@dataclass(frozen=True)
class HookSettings:
    hooks: dict[str, Hook]
    ledger_path: str = "/var/lib/hook/hook.sqlite"
    heartbeat_path: Path = Path("/var/lib/hook/deployer.heartbeat")
    status_token: str = ""
    max_body_bytes: int = 5 * 1024 * 1024
    log_level: str = "INFO"
    deploy: DeploySettings = field(default_factory=lambda: DeploySettings(root=""))

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None, with_secrets: bool = True) -> HookSettings:
        """Everything from ``environ`` (the process environment by default). The deployer passes
        ``with_secrets=False``: it never checks a signature, so it is never given the secrets."""
        environ = os.environ if environ is None else environ
        return cls(
            hooks=load_hooks(environ, with_secrets=with_secrets),
            ledger_path=environ.get("HOOK_DB") or cls.ledger_path,
            heartbeat_path=Path(environ.get("HOOK_HEARTBEAT") or cls.heartbeat_path),
            status_token=_secret(environ, "HOOK_STATUS_TOKEN") if with_secrets else "",
            max_body_bytes=_count(environ, "HOOK_MAX_BODY_BYTES", cls.max_body_bytes),
            log_level=(environ.get("LOG_LEVEL") or "INFO").upper(),
            deploy=DeploySettings.from_environ(environ),
        )
