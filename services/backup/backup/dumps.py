"""Taking, checking, listing and restoring dumps. A dump is `<database>-<UTC time>.dump` (custom
format, compressed), `.dump.age` when encrypted, with `<name>.sha256` beside it (sha256sum's
format, so `sha256sum -c` checks it too). A dump is written under a temporary name and renamed
once complete, so a listed dump is always whole."""

from __future__ import annotations

import hashlib
import re
import shlex
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from .settings import Settings

DUMP_NAME = re.compile(r"(?P<database>[\w-]+?)-(?P<at>\d{8}T\d{6}Z)(?P<manual>-manual)?\.dump(?:\.age)?")
TIME_FORMAT = "%Y%m%dT%H%M%SZ"


class BackupError(RuntimeError):
    """A backup or restore did not happen; the message says why."""


@dataclass(frozen=True)
class Dump:
    path: Path
    at: datetime
    # Taken by hand (`make backup`): retention leaves it for the operator to remove.
    manual: bool = False

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def checksum_file(self) -> Path:
        return self.path.with_name(self.path.name + ".sha256")


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as data:
        while chunk := data.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def run(
    argv: list[str], settings: Settings, stdout: IO[bytes] | int = subprocess.PIPE, data: bytes | None = None
) -> bytes:
    """A Postgres client (or age) with libpq's settings: its output; BackupError if it fails."""
    result = subprocess.run(argv, env=settings.libpq, stdout=stdout, stderr=subprocess.PIPE, input=data, check=False)
    if result.returncode != 0:
        said = result.stderr.decode(errors="replace").strip().splitlines()
        raise BackupError(f"{argv[0]} exited with {result.returncode}: {said[-1] if said else 'no message'}")
    return result.stdout or b""


def listed(settings: Settings) -> list[Dump]:
    """The dumps in the backup directory, newest first."""
    dumps = []
    for path in settings.directory.iterdir():
        if match := DUMP_NAME.fullmatch(path.name):
            at = datetime.strptime(match["at"], TIME_FORMAT).replace(tzinfo=UTC)
            dumps.append(Dump(path, at, manual=bool(match["manual"])))
    return sorted(dumps, key=lambda dump: dump.at, reverse=True)


def take(settings: Settings, now: datetime, manual: bool = False) -> Dump:
    """pg_dump the database (encrypted if a recipient is set), its checksum beside it, then the
    off-site copy command if there is one."""
    name = f"{settings.database}-{now.strftime(TIME_FORMAT)}{'-manual' if manual else ''}.dump"
    name += ".age" if settings.age_recipient else ""
    dump = Dump(settings.directory / name, now, manual)
    partial = dump.path.with_name(f".{name}.partial")
    try:
        with partial.open("wb") as out:
            if settings.age_recipient:
                dumping = subprocess.Popen(
                    ["pg_dump", "--format=custom", "--no-password"],
                    env=settings.libpq,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                encrypted = subprocess.run(
                    ["age", "--encrypt", "--recipient", settings.age_recipient],
                    stdin=dumping.stdout,
                    stdout=out,
                    stderr=subprocess.PIPE,
                    check=False,
                )
                assert dumping.stdout is not None and dumping.stderr is not None  # PIPE
                dumping.stdout.close()
                said = dumping.stderr.read().decode(errors="replace").strip()
                if dumping.wait() != 0:
                    raise BackupError(f"pg_dump exited with {dumping.returncode}: {said or 'no message'}")
                if encrypted.returncode != 0:
                    raise BackupError(f"age exited with {encrypted.returncode}: {encrypted.stderr.decode().strip()}")
            else:
                run(["pg_dump", "--format=custom", "--no-password"], settings, stdout=out)
        partial.rename(dump.path)
    finally:
        partial.unlink(missing_ok=True)
    dump.checksum_file.write_text(f"{sha256_of(dump.path)}  {dump.name}\n")
    if settings.copy_command:
        copied = subprocess.run(copy_argv(settings.copy_command, dump), capture_output=True, check=False)
        if copied.returncode != 0:
            said = (copied.stderr or copied.stdout).decode(errors="replace").strip()
            raise BackupError(f"the copy command exited with {copied.returncode}: {said[-500:]}")
    return dump


def copy_argv(command: str, dump: Dump) -> list[str]:
    """BACKUP_COPY_COMMAND as an argv: {dump} and {checksum} stand for the two files' paths; with
    neither, both are appended."""
    words = shlex.split(command)
    paths = {"{dump}": str(dump.path), "{checksum}": str(dump.checksum_file)}
    if not set(paths) & set(words):
        return [*words, *paths.values()]
    return [paths.get(word, word) for word in words]


def verify(dump: Dump) -> None:
    """The dump is whole: its checksum file exists and matches."""
    if not dump.checksum_file.exists():
        raise BackupError(f"{dump.name} has no checksum file ({dump.checksum_file.name}): refusing it")
    expected = dump.checksum_file.read_text().split()[0]
    if sha256_of(dump.path) != expected:
        raise BackupError(f"{dump.name} does not match its checksum: it is damaged or incomplete; refusing it")


def query(settings: Settings, sql: str) -> list[str]:
    output = run(["psql", "--no-psqlrc", "--no-password", "-At", "-v", "ON_ERROR_STOP=1", "-c", sql], settings)
    return [line for line in output.decode().splitlines() if line]


def row_counts(settings: Settings) -> dict[str, int]:
    """Rows in each table of the public schema."""
    tables = query(
        settings,
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name",
    )
    return {table: int(query(settings, f'SELECT count(*) FROM public."{table}"')[0]) for table in tables}


def restore(settings: Settings, dump: Dump, force: bool) -> None:
    """Replace the database's contents with the dump's. Refused when the dump fails its checksum,
    and, unless ``force``, when the database holds any user account."""
    verify(dump)
    users = query(settings, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public' AND tablename = 'users'")
    if users[0] != "0" and query(settings, "SELECT count(*) FROM public.users")[0] != "0" and not force:
        raise BackupError(
            f"database {settings.database} holds user accounts: restoring would replace them (FORCE=1 to do so)"
        )
    restoring = [
        "pg_restore",
        "--no-password",
        "--clean",
        "--if-exists",
        "--single-transaction",
        "-d",
        settings.database,
    ]
    if dump.name.endswith(".age"):
        if not settings.age_identity_file:
            raise BackupError(f"{dump.name} is encrypted: set BACKUP_AGE_IDENTITY_FILE to the private key's file")
        decrypted = run(["age", "--decrypt", "--identity", settings.age_identity_file, str(dump.path)], settings)
        run(restoring, settings, data=decrypted)
    else:
        run([*restoring, str(dump.path)], settings)
