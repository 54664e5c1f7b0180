"""Which dumps go: the newest dump of each of the last BACKUP_KEEP_DAILY days that have one stays,
and the newest of each of the last BACKUP_KEEP_WEEKLY weeks (ISO weeks); the rest go."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime


def day(at: datetime) -> tuple[int, int, int]:
    return (at.year, at.month, at.day)


def week(at: datetime) -> tuple[int, int, int]:
    year, number, _ = at.isocalendar()
    return (year, number, 0)


def to_remove(taken: Sequence[tuple[str, datetime]], keep_daily: int, keep_weekly: int) -> list[str]:
    """The names among ``taken`` (name, when) that no rule keeps."""
    newest_first = sorted(taken, key=lambda dump: dump[1], reverse=True)
    kept: set[str] = set()
    for keep, period in ((keep_daily, day), (keep_weekly, week)):
        seen: list[tuple[int, int, int]] = []
        for name, at in newest_first:
            if period(at) not in seen and len(seen) < keep:
                seen.append(period(at))
                kept.add(name)
    return [name for name, _ in newest_first if name not in kept]
