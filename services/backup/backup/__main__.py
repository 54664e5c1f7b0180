"""`python3 -m backup run | now | list | restore NAME [--force] | counts | health`.

run      the service: a backup at each time the schedule says, then retention; a failure is an
         error line in the log and makes the service unhealthy until the next backup succeeds
now      one backup at once (`make backup`), which retention leaves alone; exits non-zero if it failed
list     the dumps, newest first, with sizes and ages (`make backups`)
restore  the dump NAME into the database (`make restore`), checksum first
counts   rows per table, as JSON
health   the container's health check: the last backup did not fail
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .dumps import BackupError, Dump, listed, restore, row_counts, take
from .retention import to_remove
from .settings import ConfigError, Settings

log = logging.getLogger("backup")


def record_status(settings: Settings, ok: bool, detail: str) -> None:
    status = {"ok": ok, "at": datetime.now(UTC).isoformat(timespec="seconds"), "detail": detail}
    settings.status_file.write_text(json.dumps(status))


def back_up(settings: Settings, manual: bool = False) -> Dump:
    """One backup, then retention (of the scheduled ones); the status the health check reads."""
    try:
        dump = take(settings, datetime.now(UTC), manual)
        scheduled = [(d.name, d.at) for d in listed(settings) if not d.manual]
        for name in to_remove(scheduled, settings.keep_daily, settings.keep_weekly):
            for path in (settings.directory / name, settings.directory / f"{name}.sha256"):
                path.unlink(missing_ok=True)
            log.info("removed %s (retention: %d daily, %d weekly)", name, settings.keep_daily, settings.keep_weekly)
    except (BackupError, OSError) as error:
        log.error("backup failed: %s", error)
        record_status(settings, False, str(error))
        raise
    size = dump.path.stat().st_size
    log.info("backup %s: %d bytes, checksum in %s", dump.name, size, dump.checksum_file.name)
    record_status(settings, True, dump.name)
    return dump


def serve(settings: Settings) -> None:
    log.info("backups of %s into %s, schedule %s", settings.database, settings.directory, settings.schedule_text)
    if settings.metrics_port:
        from .metrics import serve as serve_metrics  # prometheus_client: the service's, not the commands'

        serve_metrics(settings)
    while True:
        due = settings.schedule.next_after(datetime.now(UTC))
        log.info("next backup at %s", due.isoformat(timespec="seconds"))
        time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()))
        # A failure is logged and recorded: the service stays up, unhealthy, and tries again on schedule.
        with contextlib.suppress(BackupError, OSError):
            back_up(settings)


def keep_private(directory: Path) -> None:
    """The backups' folder readable by its owner alone (a host folder may belong to someone else)."""
    try:
        directory.chmod(0o700)
    except PermissionError:
        log.warning(
            "%s is not ours to make private (mode %o): its owner should chmod 700 it",
            directory,
            directory.stat().st_mode & 0o777,
        )


def describe(dump: Dump, now: datetime) -> str:
    size = dump.path.stat().st_size
    hours = (now - dump.at).total_seconds() / 3600
    age = f"{hours:.1f} h" if hours < 48 else f"{hours / 24:.1f} d"
    return f"{dump.name}  {size / 1_048_576:8.2f} MiB  {age} old"


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s backup: %(message)s")
    # A dump is every row of every table, password hashes included: readable by its owner alone.
    os.umask(0o077)
    command, args = (argv[0], argv[1:]) if argv else ("", [])
    try:
        settings = Settings.from_environ()
        if command == "run":
            keep_private(settings.directory)
            serve(settings)
        elif command == "now":
            print(back_up(settings, manual=True).name)
        elif command == "list":
            now = datetime.now(UTC)
            for dump in listed(settings):
                print(describe(dump, now))
        elif command == "restore" and args:
            found = next((d for d in listed(settings) if d.name == args[0]), None)
            if found is None:
                raise BackupError(f"no dump {args[0]!r} in {settings.directory} (make backups lists them)")
            restore(settings, found, force="--force" in args)
            log.info("restored %s into %s", found.name, settings.database)
        elif command == "counts":
            print(json.dumps(row_counts(settings), indent=2))
        elif command == "health":
            status = json.loads(settings.status_file.read_text()) if settings.status_file.exists() else {"ok": True}
            return 0 if status["ok"] else 1
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ConfigError as error:
        log.error("%s", error)
        return 2
    except (BackupError, OSError) as error:
        log.error("%s", error)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
