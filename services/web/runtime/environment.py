"""The environment a process runs with: the real one, over ``.env.d/.env.<mode>``.

The mode comes from ``APP_ENV`` (``FLASK_ENV`` is accepted too: older Flask projects set that).
``.env.d/.env.<mode>`` fills in whatever the real environment leaves unset; the real environment wins.

Shared by the app's settings (``api.config``) and ``gunicorn.conf.py`` (see ``runtime``: gunicorn's
master reads it, and a master that imported the app would fork reloaded workers with the old code).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values

MODES = {
    "development": "development",
    "dev": "development",
    "test": "test",
    "testing": "test",
    "production": "production",
    "prod": "production",
}
DEFAULT_MODE = "production"  # an unset mode must not quietly relax the production checks


class ConfigError(RuntimeError):
    """The configuration cannot run in this mode; the message names the variable."""


def resolve_mode(environ: Mapping[str, str]) -> str:
    raw = (environ.get("APP_ENV") or environ.get("FLASK_ENV") or DEFAULT_MODE).strip().lower()
    try:
        return MODES[raw]
    except KeyError:
        raise ConfigError(f"APP_ENV={raw!r} is not a mode; use one of development, test, production") from None


def find_env_dir(environ: Mapping[str, str]) -> Path | None:
    """``ENV_DIR``, or the nearest ``.env.d`` above this file (the repository root)."""
    if environ.get("ENV_DIR"):
        return Path(environ["ENV_DIR"])
    for parent in Path(__file__).resolve().parents:
        candidate = parent / ".env.d"
        if candidate.is_dir():
            return candidate
    return None


def load_environment(environ: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """Return the mode and the merged settings: env file first, the given environment on top."""
    mode = resolve_mode(environ)
    merged: dict[str, str] = {}
    env_dir = find_env_dir(environ)
    if env_dir is not None:
        env_file = env_dir / f".env.{mode}"
        if env_file.is_file():
            merged.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    merged.update(environ)
    return mode, merged
