"""Which hooks exist: from HOOKS_FILE (several hooks, JSON) or, for the usual single GitHub hook,
from HOOK_* variables. Invalid configuration stops the start with a message that names the problem.

A hooks file, in the spirit of adnanh/webhook's (id, command, trigger rules)::

    {"hooks": [{
        "id": "github",
        "secrets": {"env": ["HOOK_SECRET", "HOOK_SECRET_PREVIOUS"]},
        "trigger": {"event": "push", "repository": "acme/shop", "branch": "main"},
        "command": "deploy"
    }]}

``secrets`` names where the secrets are (``env``: variable names, ``file``: a file with one secret
per line), never the secrets themselves. ``command`` is ``"deploy"`` (the built-in, health-gated
compose deploy) or an argv list run in the checked-out commit with DEPLOY_SHA and DEPLOY_REF set.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

RESERVED_IDS = {"status", "deploys", "healthz", "rollback"}
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
REPOSITORY_PATTERN = re.compile(r"^[\w.-]+/[\w.-]+$")
HOOK_KEYS = {"id", "secrets", "trigger", "command"}
TRIGGER_KEYS = {"event", "repository", "branch"}


class ConfigError(ValueError):
    """The hooks configuration is not usable; the message says where and why."""


@dataclass(frozen=True)
class Hook:
    id: str
    secrets: tuple[bytes, ...]
    branch: str
    repository: str | None
    command: str | tuple[str, ...]

    @property
    def ref(self) -> str:
        return f"refs/heads/{self.branch}"


def read_secrets(where: Mapping[str, object], environ: Mapping[str, str], label: str) -> tuple[bytes, ...]:
    secrets: list[str] = []
    unknown = set(where) - {"env", "file"}
    if unknown:
        raise ConfigError(f"{label}: secrets takes env and file, not {sorted(unknown)}")
    raw_names = where.get("env", [])
    names = [raw_names] if isinstance(raw_names, str) else raw_names
    if not (isinstance(names, list) and all(isinstance(name, str) for name in names)):
        raise ConfigError(f"{label}: secrets.env must be a variable name or a list of them")
    file = where.get("file")
    if file is not None and not isinstance(file, str):
        raise ConfigError(f"{label}: secrets.file must be a path")
    for name in names:
        if environ.get(name):
            secrets.append(environ[name])
    if file:
        path = Path(file)
        try:
            secrets.extend(line.strip() for line in path.read_text().splitlines() if line.strip())
        except OSError as error:
            raise ConfigError(f"{label}: cannot read secret file {path}: {error.strerror}") from None
    if not secrets:
        raise ConfigError(
            f"{label}: no secret is set (looked in {names or 'no variables'}{' and ' + file if file else ''})"
        )
    if len(secrets) > 2:
        raise ConfigError(f"{label}: at most two secrets (the current one and the one being rotated out)")
    for secret in secrets:
        if len(secret) < 16:
            raise ConfigError(f"{label}: a secret is shorter than 16 characters")
    return tuple(secret.encode() for secret in secrets)


def parse_hook(raw: object, environ: Mapping[str, str], position: int, with_secrets: bool = True) -> Hook:
    label = f"hook #{position + 1}"
    if not isinstance(raw, dict):
        raise ConfigError(f"{label}: must be an object")
    if isinstance(raw.get("id"), str):
        label = f"hook {raw['id']!r}"
    unknown = set(raw) - HOOK_KEYS
    if unknown:
        raise ConfigError(f"{label}: unknown keys {sorted(unknown)} (allowed: {sorted(HOOK_KEYS)})")
    hook_id = raw.get("id")
    if not isinstance(hook_id, str) or not ID_PATTERN.match(hook_id):
        raise ConfigError(f"{label}: id must be lowercase letters, digits, - or _ (it becomes /hooks/<id>)")
    if hook_id in RESERVED_IDS:
        raise ConfigError(f"{label}: id {hook_id!r} is reserved for {', '.join(sorted(RESERVED_IDS))}")
    if not isinstance(raw.get("secrets"), dict):
        raise ConfigError(f'{label}: secrets must be an object such as {{"env": ["HOOK_SECRET"]}}')
    trigger = raw.get("trigger")
    if not isinstance(trigger, dict):
        raise ConfigError(f'{label}: trigger must be an object such as {{"event": "push", "branch": "main"}}')
    unknown = set(trigger) - TRIGGER_KEYS
    if unknown:
        raise ConfigError(f"{label}: unknown trigger keys {sorted(unknown)} (allowed: {sorted(TRIGGER_KEYS)})")
    if trigger.get("event", "push") != "push":
        raise ConfigError(f"{label}: trigger.event can only be push")
    branch = trigger.get("branch")
    if not isinstance(branch, str) or not branch or branch.startswith("refs/"):
        raise ConfigError(f"{label}: trigger.branch must be a branch name such as main")
    repository = trigger.get("repository")
    if repository is not None and (not isinstance(repository, str) or not REPOSITORY_PATTERN.match(repository)):
        raise ConfigError(f"{label}: trigger.repository must look like owner/name")
    command = raw.get("command", "deploy")
    if command != "deploy":
        if not (isinstance(command, list) and command and all(isinstance(arg, str) and arg for arg in command)):
            raise ConfigError(f'{label}: command must be "deploy" or a non-empty list of strings')
        command = tuple(command)
    secrets = read_secrets(raw["secrets"], environ, label) if with_secrets else ()
    return Hook(hook_id, secrets, branch, repository, command)


def load_hooks(environ: Mapping[str, str], with_secrets: bool = True) -> dict[str, Hook]:
    """The hooks by id (``HookSettings.from_environ`` calls this once). The deployer passes
    ``with_secrets=False``: it never verifies signatures, so it is not given the secrets."""
    path = environ.get("HOOKS_FILE")
    if not path:
        secrets: dict[str, object] = {"env": ["HOOK_SECRET", "HOOK_SECRET_PREVIOUS"]}
        if environ.get("HOOK_SECRET_FILE"):
            secrets = {"file": environ["HOOK_SECRET_FILE"]}
        trigger = {"event": "push", "branch": environ.get("HOOK_BRANCH") or "main"}
        if environ.get("HOOK_REPOSITORY"):
            trigger["repository"] = environ["HOOK_REPOSITORY"]
        hook = parse_hook({"id": "github", "secrets": secrets, "trigger": trigger}, environ, 0, with_secrets)
        return {hook.id: hook}
    try:
        document = json.loads(Path(path).read_text())
    except OSError as error:
        raise ConfigError(f"HOOKS_FILE {path}: {error.strerror}") from None
    except ValueError as error:
        raise ConfigError(f"HOOKS_FILE {path}: not valid JSON ({error})") from None
    if not isinstance(document, dict) or set(document) != {"hooks"} or not isinstance(document["hooks"], list):
        raise ConfigError(f'HOOKS_FILE {path}: expected {{"hooks": [...]}}')
    if not document["hooks"]:
        raise ConfigError(f"HOOKS_FILE {path}: no hooks")
    hooks: dict[str, Hook] = {}
    for position, raw in enumerate(document["hooks"]):
        hook = parse_hook(raw, environ, position, with_secrets)
        if hook.id in hooks:
            raise ConfigError(f"HOOKS_FILE {path}: hook id {hook.id!r} appears twice")
        hooks[hook.id] = hook
    return hooks
