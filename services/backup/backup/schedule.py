"""When the next backup runs: BACKUP_SCHEDULE is an interval ("30s", "15m", "6h", "1d"), a cron
expression of five fields (minute hour day-of-month month day-of-week; `*`, numbers, lists,
ranges and steps; read by croniter, Debian's python3-croniter in the image), or @hourly, @daily
(the default: midnight UTC), @weekly. Times are UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from croniter import croniter

INTERVAL = re.compile(r"(?P<count>[1-9]\d*)(?P<unit>[smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0"}
# minute, hour, day of month, month, day of week (0 or 7 is Sunday)
CRON_FIELDS = 5


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime: ...


@dataclass(frozen=True)
class Every:
    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class Cron:
    """A cron line, read by croniter (the web app's chores read theirs the same way): when both day
    fields are restricted, a day matching either one runs (cron's rule, croniter's default)."""

    line: str

    def next_after(self, moment: datetime) -> datetime:
        return croniter(self.line, moment).get_next(datetime)


def parse(text: str) -> Schedule:
    """BACKUP_SCHEDULE's value as a schedule; ValueError saying what is wrong with it."""
    text = ALIASES.get(text.strip(), text.strip())
    if interval := INTERVAL.fullmatch(text):
        return Every(int(interval["count"]) * UNIT_SECONDS[interval["unit"]])
    if len(text.split()) != CRON_FIELDS or not croniter.is_valid(text):
        raise ValueError(
            f"{text!r} is neither an interval (30s, 15m, 6h, 1d), @hourly/@daily/@weekly, nor 5 cron fields"
            " (minute hour day-of-month month day-of-week)"
        )
    return Cron(text)
