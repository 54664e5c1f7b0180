"""The backup service's settings, read from the environment once, at start."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from .schedule import Schedule, parse


class ConfigError(ValueError):
    """A setting is wrong; the message names it."""


def _count(environ: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = environ.get(name) or str(default)
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(f"{name}={raw!r}: a whole number of at least {minimum}")
    return int(raw)


@dataclass(frozen=True)
class Settings:
    directory: Path
    schedule_text: str
    schedule: Schedule
    keep_daily: int
    keep_weekly: int
    # age public key ("age1..."): dumps are encrypted to it and only its private key restores them.
    age_recipient: str
    # The private key, given at restore time only (a file the operator mounts or passes).
    age_identity_file: str
    # Run after each new dump, {dump} and {checksum} standing for the files' paths: an off-site copy.
    copy_command: str
    database: str
    status_file: Path
    # Prometheus metrics (backup/metrics.py) on this port; 0: none.
    metrics_port: int
    # libpq's settings for pg_dump, pg_restore and psql (PGHOST, PGUSER, PGPASSWORD...).
    libpq: dict[str, str]

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        environ = os.environ if environ is None else environ
        schedule_text = environ.get("BACKUP_SCHEDULE") or "@daily"
        try:
            schedule = parse(schedule_text)
        except ValueError as error:
            raise ConfigError(f"BACKUP_SCHEDULE: {error}") from None
        password_file = environ.get("POSTGRES_PASSWORD_FILE") or ""
        try:
            password = Path(password_file).read_text().strip() if password_file else environ.get("PGPASSWORD", "")
        except OSError as error:
            raise ConfigError(f"POSTGRES_PASSWORD_FILE={password_file!r} cannot be read: {error.strerror}") from None
        database = environ.get("POSTGRES_DB") or "app"
        return cls(
            directory=Path(environ.get("BACKUP_DIR") or "/backups"),
            schedule_text=schedule_text,
            schedule=schedule,
            keep_daily=_count(environ, "BACKUP_KEEP_DAILY", 7, minimum=1),
            keep_weekly=_count(environ, "BACKUP_KEEP_WEEKLY", 4, minimum=0),
            age_recipient=environ.get("BACKUP_AGE_RECIPIENT") or "",
            age_identity_file=environ.get("BACKUP_AGE_IDENTITY_FILE") or "",
            copy_command=environ.get("BACKUP_COPY_COMMAND") or "",
            database=database,
            status_file=Path(environ.get("BACKUP_STATUS_FILE") or "/tmp/backup-status.json"),  # noqa: S108 - a tmpfs
            metrics_port=_count(environ, "BACKUP_METRICS_PORT", 0, minimum=0),
            libpq={
                "PATH": environ.get("PATH", "/usr/bin:/bin"),
                "PGHOST": environ.get("PGHOST") or "db",
                "PGPORT": environ.get("PGPORT") or "5432",
                "PGUSER": environ.get("PGUSER") or "postgres",
                "PGPASSWORD": password,
                "PGDATABASE": database,
                "PGCONNECT_TIMEOUT": "10",
            },
        )
