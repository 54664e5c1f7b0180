"""The backup service's schedule, retention and off-site copy command (services/backup), without a
database; the system tier backs up and restores a real one (test_backups.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backup.dumps import Dump, copy_argv
from backup.retention import to_remove
from backup.schedule import Cron, Every, parse
from backup.settings import ConfigError, Settings

NOON = datetime(2026, 12, 2, 12, 0, 30, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("30s", NOON, NOON + timedelta(seconds=30)),
        ("6h", NOON, NOON + timedelta(hours=6)),
        ("1d", NOON, NOON + timedelta(days=1)),
        ("@daily", NOON, datetime(2026, 12, 3, 0, 0, tzinfo=UTC)),
        ("@hourly", NOON, datetime(2026, 12, 2, 13, 0, tzinfo=UTC)),
        ("@weekly", NOON, datetime(2026, 12, 6, 0, 0, tzinfo=UTC)),  # Sunday
        ("*/15 * * * *", NOON, datetime(2026, 12, 2, 12, 15, tzinfo=UTC)),
        ("30 2 * * *", NOON, datetime(2026, 12, 3, 2, 30, tzinfo=UTC)),
        ("0 4 1 * *", NOON, datetime(2027, 1, 1, 4, 0, tzinfo=UTC)),
        ("0 3 * * 1-5", datetime(2026, 12, 4, 12, 0, tzinfo=UTC), datetime(2026, 12, 7, 3, 0, tzinfo=UTC)),
        ("0 0 29 2 *", NOON, datetime(2028, 2, 29, 0, 0, tzinfo=UTC)),
        ("5,10 8 * * 7", NOON, datetime(2026, 12, 6, 8, 5, tzinfo=UTC)),  # 7 is Sunday too
        # Both day fields restricted: either one matching runs (cron's rule): the 15th, or a Friday.
        ("0 0 15 * 5", NOON, datetime(2026, 12, 4, 0, 0, tzinfo=UTC)),
    ],
)
def test_the_next_backup_time(text, after, expected):
    assert parse(text).next_after(after) == expected


def test_an_interval_and_a_cron_expression_are_told_apart():
    assert isinstance(parse("15m"), Every) and isinstance(parse("15 * * * *"), Cron)


@pytest.mark.parametrize(
    "text", ["", "daily", "0s", "5x", "* * * *", "60 * * * *", "* 24 * * *", "*/0 * * * *", "a b c d e"]
)
def test_a_bad_schedule_is_refused_with_what_is_wrong(text):
    with pytest.raises(ValueError):
        parse(text)


def test_a_bad_schedule_stops_the_service_at_start_naming_the_setting():
    with pytest.raises(ConfigError, match="BACKUP_SCHEDULE"):
        Settings.from_environ({"BACKUP_SCHEDULE": "every day"})
    with pytest.raises(ConfigError, match="BACKUP_KEEP_DAILY"):
        Settings.from_environ({"BACKUP_KEEP_DAILY": "0"})


def dumps_every_six_hours(days: int) -> list[tuple[str, datetime]]:
    start = datetime(2026, 11, 1, tzinfo=UTC)
    return [(f"app-{i}", start + timedelta(hours=6 * i)) for i in range(days * 4)]


def test_retention_keeps_the_newest_of_each_recent_day_and_week():
    taken = dumps_every_six_hours(days=30)  # 1 November (a Sunday) to 30 November
    kept = {name for name, _ in taken} - set(to_remove(taken, keep_daily=7, keep_weekly=4))
    when = dict(taken)
    days = sorted({when[name].date() for name in kept})
    # The last 7 days' newest (18:00), and the newest of the 4 latest ISO weeks (their Sundays or the last day).
    daily = [datetime(2026, 11, d, 18, tzinfo=UTC) for d in range(24, 31)]
    weekly = [datetime(2026, 11, d, 18, tzinfo=UTC) for d in (15, 22, 29, 30)]
    assert sorted(when[name] for name in kept) == sorted(set(daily + weekly))
    assert len(days) == 9


def test_the_newest_dump_always_stays():
    taken = dumps_every_six_hours(days=3)
    assert taken[-1][0] not in to_remove(taken, keep_daily=1, keep_weekly=0)
    assert len(to_remove(taken, keep_daily=1, keep_weekly=0)) == len(taken) - 1


def test_the_copy_command_gets_the_dump_and_its_checksum_where_it_says_or_last():
    dump = Dump(Path("/backups/app-20261202T120000Z.dump"), NOON)
    both = ["/backups/app-20261202T120000Z.dump", "/backups/app-20261202T120000Z.dump.sha256"]
    assert copy_argv("rclone copy --immutable", dump) == ["rclone", "copy", "--immutable", *both]
    assert copy_argv('rsync -e "ssh -i /k" {dump} {checksum} host:dir/', dump) == [
        *("rsync", "-e", "ssh -i /k"),
        *both,
        "host:dir/",
    ]


def test_the_newest_backup_and_the_last_attempt_are_metrics(tmp_path):
    from prometheus_client import CollectorRegistry

    from backup.__main__ import record_status
    from backup.metrics import BackupCollector

    settings = Settings.from_environ({"BACKUP_DIR": str(tmp_path), "BACKUP_STATUS_FILE": str(tmp_path / "status")})
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BackupCollector(settings))
    value = registry.get_sample_value
    assert value("flask_stack_backups") == 0
    assert value("flask_stack_backup_last_success_timestamp_seconds") is None  # an alert sees it absent
    assert value("flask_stack_backup_last_attempt_ok") is None
    (tmp_path / "app-20261201T000000Z.dump").write_bytes(b"x" * 10)
    (tmp_path / "app-20261202T000000Z.dump").write_bytes(b"x" * 42)
    record_status(settings, True, "app-20261202T000000Z.dump")
    assert value("flask_stack_backups") == 2
    assert value("flask_stack_backup_last_success_timestamp_seconds") == datetime(2026, 12, 2, tzinfo=UTC).timestamp()
    assert value("flask_stack_backup_last_size_bytes") == 42
    assert value("flask_stack_backup_last_attempt_ok") == 1
    record_status(settings, False, "pg_dump exited with 1")
    assert value("flask_stack_backup_last_attempt_ok") == 0
