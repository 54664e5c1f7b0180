"""When the next backup runs: BACKUP_SCHEDULE is an interval ("30s", "15m", "6h", "1d"), a cron
expression of five fields (minute hour day-of-month month day-of-week; `*`, numbers, lists,
ranges and steps), or @hourly, @daily (the default: midnight UTC), @weekly. Times are UTC."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

INTERVAL = re.compile(r"(?P<count>[1-9]\d*)(?P<unit>[smhd])")
UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
ALIASES = {"@hourly": "0 * * * *", "@daily": "0 0 * * *", "@weekly": "0 0 * * 0"}
# minute, hour, day of month, month, day of week (0 or 7 is Sunday)
FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))


class Schedule(Protocol):
    def next_after(self, moment: datetime) -> datetime: ...


@dataclass(frozen=True)
class Every:
    seconds: int

    def next_after(self, moment: datetime) -> datetime:
        return moment + timedelta(seconds=self.seconds)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 is Sunday
    # Cron's rule: when both day fields are restricted, a day matching either one runs.
    any_day: bool
    any_weekday: bool

    def day_matches(self, moment: datetime) -> bool:
        day, weekday = moment.day in self.days, moment.isoweekday() % 7 in self.weekdays
        if self.any_day or self.any_weekday:
            return day and weekday
        return day or weekday

    def next_after(self, moment: datetime) -> datetime:
        candidate = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        limit = candidate + timedelta(days=366 * 5)  # 29 February on a Monday comes round within that
        while candidate < limit:
            if candidate.month not in self.months:
                candidate = (candidate.replace(day=1, hour=0, minute=0) + timedelta(days=32)).replace(day=1)
            elif not self.day_matches(candidate):
                candidate = candidate.replace(hour=0, minute=0) + timedelta(days=1)
            elif candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0) + timedelta(hours=1)
            elif candidate.minute not in self.minutes:
                candidate += timedelta(minutes=1)
            else:
                return candidate
        raise ValueError("the schedule never runs")


def parse_field(text: str, name: str, low: int, high: int) -> frozenset[int]:
    values: set[int] = set()
    for part in text.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text.isdigit() and int(step_text) > 0 else None
        if step_text and step is None:
            raise ValueError(f"{name}: {part!r} has a bad step")
        if body == "*":
            start, end = low, high
        elif "-" in body:
            first, _, last = body.partition("-")
            if not (first.isdigit() and last.isdigit()):
                raise ValueError(f"{name}: {part!r} is not a range")
            start, end = int(first), int(last)
        elif body.isdigit():
            start = end = int(body)
            if step:
                end = high
        else:
            raise ValueError(f"{name}: {part!r} is not a number, range or *")
        if not low <= start <= end <= high:
            raise ValueError(f"{name}: {part!r} is outside {low}-{high}")
        values.update(range(start, end + 1, step or 1))
    return frozenset(values)


def parse(text: str) -> Schedule:
    """BACKUP_SCHEDULE's value as a schedule; ValueError saying what is wrong with it."""
    text = ALIASES.get(text.strip(), text.strip())
    if interval := INTERVAL.fullmatch(text):
        return Every(int(interval["count"]) * UNIT_SECONDS[interval["unit"]])
    fields = text.split()
    if len(fields) != len(FIELDS):
        raise ValueError(
            f"{text!r} is neither an interval (30s, 15m, 6h, 1d), @hourly/@daily/@weekly, nor 5 cron fields"
        )
    minutes, hours, days, months, weekdays = (
        parse_field(field, name, low, high) for field, (name, low, high) in zip(fields, FIELDS, strict=True)
    )
    return Cron(
        minutes,
        hours,
        days,
        months,
        frozenset(day % 7 for day in weekdays),
        any_day=fields[2] == "*",
        any_weekday=fields[4] == "*",
    )
