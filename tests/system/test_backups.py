"""Backups on the production stack (the `backup` service, `make backup`, `make restore`): the
schedule runs, a dump restores into a new stack with other secrets (another machine, as far as the
database can tell) row for row, and a damaged dump, a database with users, and a failing backup
are each refused or reported. The token store is the database here, so revocations are rows too."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from compose_stack import QUICK_WAITS
from contract import Api
from harness.paths import REPO_ROOT
from harness.polling import until
from harness.stacks import ProductionStack, output

# A backup every 10 s, so the test sees the schedule run.
SETTINGS = {"BACKUP_SCHEDULE": "10s"}
ROWS = (
    "import sys; from backup.dumps import query; from backup.settings import Settings; "
    "print('\\n'.join(query(Settings.from_environ(), "
    "f'SELECT t::text FROM public.\"{sys.argv[1]}\" t ORDER BY 1')))"
)


class BackedUpStack(ProductionStack):
    """The production stack with the token store in the database."""

    def __init__(self, project: str, home: Path):
        super().__init__(project, home, overlays=[QUICK_WAITS], settings=SETTINGS)

    def prepare(self) -> None:
        super().prepare()
        with self.env_file.open("a") as settings:
            settings.write("BLACKLIST_STORAGE_TYPE=database\n")

    def backup(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.compose("exec", "-T", "backup", "python3", "-m", "backup", *args)

    def counts(self) -> dict[str, int]:
        counted = self.backup("counts")
        assert counted.returncode == 0, counted.stderr
        counts: dict[str, int] = json.loads(counted.stdout)
        return counts

    def rows(self) -> dict[str, list[str]]:
        """Every row of every table, as text, in order."""
        backup = self.container("backup")
        return {table: output(backup, ["python3", "-c", ROWS, table]).splitlines() for table in self.counts()}

    def api(self) -> Api:
        session = requests.Session()
        session.verify, session.trust_env = str(self.ca_file), False
        return Api(session, self.https)


def copy_out(stack: BackedUpStack, name: str, directory: Path) -> Path:
    """A dump and its checksum file, copied out of the backups volume (as bytes)."""
    for file in (name, f"{name}.sha256"):
        result = subprocess.run(
            [*stack.command, "exec", "-T", "backup", "cat", f"/backups/{file}"],
            cwd=REPO_ROOT,
            env=stack.environment,
            capture_output=True,
        )
        assert result.returncode == 0, result.stderr
        (directory / file).write_bytes(result.stdout)
    return directory / name


@pytest.fixture(scope="module")
def first(compose_ready, tmp_path_factory) -> Iterator[BackedUpStack]:
    with BackedUpStack("flask-stack-backuptest", tmp_path_factory.mktemp("backed-up")) as stack:
        yield stack


@pytest.fixture(scope="module")
def second(compose_ready, tmp_path_factory) -> Iterator[BackedUpStack]:
    """Another stack: its own project, volumes and secrets (the superuser's, the app's, JWT's)."""
    with BackedUpStack("flask-stack-restoretest", tmp_path_factory.mktemp("restored")) as stack:
        yield stack


def test_the_schedule_runs_and_each_dump_has_its_checksum(first):
    assert until(lambda: first.backup("list").stdout.strip(), timeout=60), first.compose("logs", "backup").stdout
    checked = first.compose("exec", "-T", "-w", "/backups", "backup", "sh", "-c", "sha256sum -c *.sha256")
    assert checked.returncode == 0 and " OK" in checked.stdout, checked.stdout + checked.stderr
    # Every row, password hashes included: the owner's alone.
    taken = first.backup("now")
    assert taken.returncode == 0, taken.stderr
    dump = f"/backups/{taken.stdout.strip()}"
    modes = first.compose("exec", "-T", "backup", "stat", "-c", "%a", "/backups", dump, f"{dump}.sha256").stdout
    assert modes.split() == ["700", "600", "600"], modes
    assert first.backup("health").returncode == 0


def test_a_failed_backup_is_loud_and_unhealthy_until_the_next_one_succeeds(first):
    # The failing backup and the health check in one exec: the schedule's next backup (every 10 s)
    # must not slip in between them, as it did on a busy machine when they were two.
    failed = first.compose(
        "exec",
        "-T",
        "backup",
        "sh",
        "-c",
        "BACKUP_COPY_COMMAND=false python3 -m backup now; echo now=$?; python3 -m backup health; echo health=$?",
    )
    assert "backup failed: the copy command exited with 1" in failed.stderr, failed.stderr[-2000:]
    assert "now=0" not in failed.stdout and "health=1" in failed.stdout, failed.stdout
    # The schedule's next backup (10 s) succeeds, and the service is healthy again.
    assert until(lambda: first.backup("health").returncode == 0, timeout=40)


def test_a_dump_restores_into_another_stack_row_for_row(first, second, tmp_path):
    api = first.api()
    people = [f"backup-{uuid.uuid4().hex[:8]}@example.com" for _ in range(3)]
    tokens = [api.tokens(email) for email in people]
    # A sign-out: revoked tokens are rows of the database token store.
    signed_out = api.logout(tokens[0]["access_token"])
    assert signed_out.status_code == 204, signed_out.text
    taken = first.make("backup")
    assert taken.returncode == 0, taken.stdout + taken.stderr
    name = taken.stdout.strip().splitlines()[-1]
    listed = first.make("backups")
    assert name in listed.stdout and "MiB" in listed.stdout
    before = first.rows()
    # The database token store's table (auth_state) holds the sign-out's revocations.
    assert len(before["users"]) >= 3 and before["auth_state"], before.keys()

    dump = copy_out(first, name, tmp_path)
    restored = second.make("restore", f"FILE={dump}")
    assert restored.returncode == 0, restored.stdout[-3000:] + restored.stderr[-3000:]
    assert second.rows() == before
    # `make restore` ends with the row counts of what it restored.
    assert json.loads(restored.stdout[restored.stdout.rindex("{") :]) == {t: len(r) for t, r in before.items()}
    # The accounts work on the new stack (their password hashes came along; its JWT key is its own).
    assert second.api().tokens(people[1])["access_token"]


def test_a_damaged_dump_is_refused_and_the_database_is_untouched(first, second, tmp_path):
    taken = first.backup("now")
    assert taken.returncode == 0, taken.stderr
    dump = copy_out(first, taken.stdout.strip(), tmp_path)
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    before = second.counts()
    refused = second.make("restore", f"FILE={dump}", "FORCE=1")
    assert refused.returncode != 0
    assert "does not match its checksum" in refused.stdout + refused.stderr
    assert second.counts() == before


def test_a_database_with_users_is_not_overwritten_without_force(first, tmp_path):
    first.api().tokens(f"backup-{uuid.uuid4().hex[:8]}@example.com")
    taken = first.backup("now")
    assert taken.returncode == 0, taken.stderr
    refused = first.make("restore", f"FILE={taken.stdout.strip()}")
    assert refused.returncode != 0 and "FORCE=1" in refused.stdout + refused.stderr


def test_an_encrypted_dump_is_unreadable_without_its_key_and_restores_with_it(first, tmp_path):
    """age: dumps encrypted to a public key (BACKUP_AGE_RECIPIENT); the private key, given only at
    restore time (BACKUP_AGE_IDENTITY_FILE), decrypts them. The key pair lives in the container's
    /tmp for the test; an operator keeps the private key off the host."""
    made = first.compose("exec", "-T", "backup", "age-keygen", "-o", "/tmp/age-key")  # the operator's, elsewhere
    assert made.returncode == 0, made.stderr
    recipient = (made.stderr + made.stdout).split("Public key: ")[1].split()[0]
    encrypted = first.compose(
        "exec", "-T", "-e", f"BACKUP_AGE_RECIPIENT={recipient}", "backup", "python3", "-m", "backup", "now"
    )
    assert encrypted.returncode == 0, encrypted.stderr
    name = encrypted.stdout.strip()
    assert name.endswith(".dump.age")
    head = first.compose("exec", "-T", "backup", "head", "-c", "40", f"/backups/{name}").stdout
    assert head.startswith("age-encryption.org/v1") and "PGDMP" not in head
    before = first.rows()
    without_key = first.backup("restore", name, "--force")
    assert without_key.returncode != 0 and "BACKUP_AGE_IDENTITY_FILE" in without_key.stderr
    key = first.compose("exec", "-T", "backup", "cat", "/tmp/age-key").stdout
    (tmp_path / "age-key").write_text(key)
    restored = first.make("restore", f"FILE={name}", "FORCE=1", f"AGE_KEY={tmp_path / 'age-key'}")
    assert restored.returncode == 0, restored.stdout[-2000:] + restored.stderr[-2000:]
    assert first.rows() == before
    # The private key was in the container for the restore only.
    assert first.compose("exec", "-T", "backup", "test", "-e", "/tmp/age-key").returncode == 1


def test_postgres_down_is_a_failed_backup_and_the_next_one_after_it_is_back_succeeds(first):
    stopped = first.compose("stop", "db")
    assert stopped.returncode == 0, stopped.stderr
    try:
        failed = first.backup("now")
        assert failed.returncode == 1 and "backup failed: pg_dump exited with 1" in failed.stderr, failed.stderr
        assert first.backup("health").returncode == 1
    finally:
        started = first.compose("start", "db")
        assert started.returncode == 0, started.stderr
    assert until(lambda: first.backup("health").returncode == 0, timeout=90)  # a scheduled one, every 10 s
    # The app is back too, for whatever runs next on this stack.
    assert until(lambda: first.api().get("/api/readyz").status_code == 200, timeout=60)


def test_a_database_volume_made_with_other_secrets_is_named_as_the_cause_within_a_minute(second, tmp_path):
    """`make prod` with secrets other than those the database volume was made with (a second
    clone's `make secrets`, as met in the field): the app cannot sign in to Postgres, and make prod
    gives up within PROD_WAIT_SECONDS, naming the cause and the way out. The stack then gets its
    own secrets back."""
    home = tmp_path / "another-clone"
    home.mkdir()
    other = BackedUpStack(second.project, home)
    other.prepare()
    started = time.monotonic()
    try:
        refused = other.make("prod", "PROD_WAIT_SECONDS=45")
        took = time.monotonic() - started
    finally:
        restored = second.make("prod")
        second.keep_ca()
    said = refused.stdout + refused.stderr
    assert refused.returncode != 0, said[-3000:]
    assert took < 120, took
    assert 'password authentication failed for user "app"' in said, said[-3000:]
    assert "the database volume was made with other secrets" in said and "make prod-kill-volumes" in said
    assert restored.returncode == 0, restored.stdout[-2000:] + restored.stderr[-2000:]
    assert second.api().get("/api/readyz").status_code == 200
