"""Background jobs: Celery on Redis, wired as Flask's docs show ("Background Tasks with Celery"): one
Celery app per Flask app, configured from the one settings object, every job run inside the app
context. Tasks live with their concern (``api/mail.py``, ``api/auth/chores.py``), as shared tasks.

- **The queue** is a Redis database of its own (JOBS_REDIS_URL, or JOBS_REDIS_DB on REDIS_HOST),
  reached as a Redis user of its own whose keys all start with ``jobs:`` (compose/redis/jobs.acl);
  the API's user cannot read it, nor it the tokens.
- **At least once**: a job is acknowledged when it is done, not when it is taken (``acks_late``); a
  worker process killed under a job gives it back (``reject_on_worker_lost``); a whole worker that
  vanished leaves its jobs unacknowledged, and Redis hands them out again after
  JOBS_VISIBILITY_TIMEOUT (looked for every 10 s). A job may therefore run twice: jobs are written
  to bear that.
- **No queue** (JOBS_REDIS_URL unset: ``make dev``, the unit tier): each job runs at once, in the
  process that asks for it (Celery's eager mode), so nothing else changes for a newcomer.
- **Chores**: ``@chore("SETTING")`` makes a task run on the cron line the setting holds (croniter
  reads it, as it reads the backup service's schedule). The scheduler (celery beat with ``Scheduler``
  below) claims each run in Redis before sending it, so two schedulers (a deploy's overlap, a
  mistake) still run a chore once per tick.
- **Seen**: ``flask jobs`` (queued, taken, given up on, each chore's next and last runs), the
  worker's metrics, the health files the containers' checks read.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import redis
from celery import Celery, Task, shared_task
from celery.beat import ScheduleEntry
from celery.beat import Scheduler as BeatScheduler
from celery.schedules import BaseSchedule, schedstate
from celery.signals import task_failure, task_prerun, task_retry, task_success
from croniter import croniter
from flask import Flask, current_app
from kombu.exceptions import OperationalError as BrokerUnavailable
from prometheus_client.core import GaugeMetricFamily, Metric

from . import metrics

log = logging.getLogger(__name__)

KEY_PREFIX = "jobs:"
QUEUE = "jobs"
DEAD_LETTERS = f"{KEY_PREFIX}dead"
DEAD_LETTERS_KEPT = 1000
# What the containers' health checks read: the time of the worker's last answer to a ping of its
# own, and of the scheduler's last tick (a bash builtin compares it with the clock).
WORKER_ALIVE_FILE = Path("/tmp/worker-alive")  # noqa: S108 - a tmpfs of the container's own
SCHEDULER_TICK_FILE = Path("/tmp/scheduler-tick")  # noqa: S108 - a tmpfs of the container's own
ALIVE_EVERY_SECONDS = 10
# The scheduler looks at least this often whether a chore is due (and so writes its tick).
SCHEDULER_MAX_SLEEP = 5

# Celery's classes are generic only in their stubs (celery-types), not at run time.
if TYPE_CHECKING:
    AnyTask = Task[Any, Any]
else:
    AnyTask = Task

# Chore task name -> the setting that holds its cron line.
CHORES: dict[str, str] = {}


class JobsUnavailable(Exception):
    """The queue could not take a job (Redis unreachable or refusing)."""


class FlaskTask(AnyTask):
    """Every job runs inside the Flask app's context, as a request does."""

    flask_app: Flask

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        with self.flask_app.app_context():
            return self.run(*args, **kwargs)


def init_app(app: Flask) -> Celery:
    from . import mail  # noqa: F401 - registers the tasks of each concern
    from .auth import chores  # noqa: F401

    config = app.config
    url = config["JOBS_REDIS_URL"]
    task_class = type("AppTask", (FlaskTask,), {"flask_app": app})
    celery = Celery(app.import_name, task_cls=task_class, set_as_current=True)
    key_space = {"global_keyprefix": KEY_PREFIX}
    celery.conf.update(
        broker_url=url or "memory://",
        result_backend=url,
        task_always_eager=url is None,
        task_eager_propagates=True,
        task_default_queue=QUEUE,
        task_ignore_result=True,
        result_expires=timedelta(days=1),
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        worker_concurrency=config["JOBS_CONCURRENCY"],
        worker_hijack_root_logger=False,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            **key_space,
            "visibility_timeout": config["JOBS_VISIBILITY_TIMEOUT"],
            # Look for a vanished worker's jobs every 10 s (kombu's default looks every 100 s), or
            # twice within a shorter visibility timeout.
            "unacked_restore_interval": min(10, config["JOBS_VISIBILITY_TIMEOUT"] / 2),
            "unacked_restore_throttle": 1,
            # The workers' control channel (a ping) by a fixed name, "jobs:/fanout.celery.pidbox", not
            # one with the database's index: Redis's ACL takes a subscription's pattern literally.
            "fanout_prefix": "/fanout.",  # kombu reads it back by its "/" and "."
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        result_backend_transport_options=key_space,
        # A request that asks for a job waits a moment for Redis, never long: then 503 (or a log line).
        task_publish_retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5},
        beat_max_loop_interval=SCHEDULER_MAX_SLEEP,
        beat_schedule={
            name: {"task": name, "schedule": Cron(config[setting])}
            for name, setting in CHORES.items()
            if config[setting]
        },
    )
    celery.set_default()
    app.extensions["celery"] = celery
    return celery


def current_celery_of(app: Flask) -> Celery:
    return cast(Celery, app.extensions["celery"])


def queue_client(app: Flask | None = None) -> redis.Redis | None:
    """The queue's Redis, as the queue's user (dead letters, chore claims, `flask jobs`)."""
    url = (app or current_app).config["JOBS_REDIS_URL"]
    if not url:
        return None
    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, decode_responses=True)


def enqueue(task: Task[Any, Any], *args: Any, **kwargs: Any) -> None:
    """Hand a job to the queue (or, with none, run it now). JobsUnavailable when Redis cannot take it."""
    try:
        task.apply_async(args, kwargs)
    except (BrokerUnavailable, redis.RedisError) as error:
        raise JobsUnavailable(f"the job queue cannot take {task.name}: {error}") from error


def chore(setting: str) -> Callable[[Callable[[], Any]], Task[Any, Any]]:
    """A task run on the schedule the setting holds (a cron line; "off": never)."""

    def register(func: Callable[[], Any]) -> Task[Any, Any]:
        task = shared_task(name=f"chores.{func.__name__}")(func)
        CHORES[task.name] = setting
        return cast("Task[Any, Any]", task)

    return register


def dead_letter(task: str, description: dict[str, Any], error: str) -> None:
    """A job given up on: logged, and kept (newest first, the last DEAD_LETTERS_KEPT) for `flask jobs`."""
    log.warning("job %s given up on: %s (%s)", task, error, json.dumps(description))
    client = queue_client()
    if client is None:
        return
    letter = json.dumps(
        {"task": task, "at": datetime.now(UTC).isoformat(timespec="seconds"), "error": error, **description}
    )
    with client.pipeline(transaction=False) as pipe:
        pipe.lpush(DEAD_LETTERS, letter)
        pipe.ltrim(DEAD_LETTERS, 0, DEAD_LETTERS_KEPT - 1)
        pipe.execute()


class Cron(BaseSchedule):
    """A cron line as celery beat's schedule, read by croniter (UTC)."""

    def __init__(self, line: str, **kwargs: Any):
        self.line = line  # checked with the other settings (api/config.py)
        super().__init__(**kwargs)

    def now(self) -> datetime:
        return datetime.now(UTC)

    def next_after(self, moment: datetime) -> datetime:
        return croniter(self.line, moment.astimezone(UTC)).get_next(datetime)

    def last_due(self, moment: datetime) -> datetime:
        return croniter(self.line, moment.astimezone(UTC)).get_prev(datetime)

    def remaining_estimate(self, last_run_at: datetime) -> timedelta:
        return self.next_after(last_run_at) - self.now()

    def is_due(self, last_run_at: datetime) -> schedstate:
        now = self.now()
        if self.next_after(last_run_at) <= now:
            return schedstate(True, (self.next_after(now) - now).total_seconds())
        return schedstate(False, (self.next_after(last_run_at) - now).total_seconds())

    def __repr__(self) -> str:
        return f"<Cron {self.line}>"

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.__class__, (self.line,))


def claim_key(name: str, due: datetime) -> str:
    return f"{KEY_PREFIX}chore:{name}:{due.strftime('%Y%m%dT%H%M%S')}"


def last_run_key(name: str) -> str:
    return f"{KEY_PREFIX}chore:{name}:last"


class Scheduler(BeatScheduler):
    """celery beat's in-memory scheduler (nothing written to the container's disk), which claims each
    chore's run in Redis first (SET NX on the chore and the time it came due): of two schedulers,
    one sends it. Each tick writes SCHEDULER_TICK_FILE for the health check."""

    def setup_schedule(self) -> None:
        super().setup_schedule()
        self.claims = redis.Redis.from_url(self.app.conf.broker_url, socket_connect_timeout=2, socket_timeout=5)

    def tick(self, *args: Any, **kwargs: Any) -> float:
        SCHEDULER_TICK_FILE.write_text(f"{int(time.time())}\n")  # a line: bash's read wants its newline
        return super().tick(*args, **kwargs)

    def apply_entry(self, entry: ScheduleEntry, producer: Any = None) -> None:
        name = str(entry.name)
        schedule = entry.schedule
        due = schedule.last_due(schedule.now()) if isinstance(schedule, Cron) else datetime.now(UTC)
        try:
            claimed = self.claims.set(claim_key(name, due), socket.gethostname(), nx=True, ex=86400)
            if claimed:
                self.claims.set(last_run_key(name), due.isoformat(timespec="seconds"))
        except redis.RedisError as error:
            log.warning(
                "chore %s not sent: its run cannot be claimed (%s); the next tick tries again", entry.name, error
            )
            return
        if not claimed:
            log.info("chore %s due %s: already sent by another scheduler", entry.name, due.isoformat())
            return
        super().apply_entry(entry, producer=producer)


def keep_worker_alive_file(celery: Celery, hostname: str, stop: threading.Event) -> None:
    """In the worker: ask the worker itself for a ping through the queue every ALIVE_EVERY_SECONDS
    and write the time of each answer (a worker that lost Redis, or hangs, stops answering)."""
    while not stop.is_set():
        try:
            if celery.control.ping(destination=[hostname], timeout=3):
                WORKER_ALIVE_FILE.write_text(f"{int(time.time())}\n")
        except Exception as error:  # noqa: BLE001 - any failure is only "no answer this time"
            log.warning("the worker's own ping failed: %s", error)
        stop.wait(ALIVE_EVERY_SECONDS)


class QueueCollector:
    """``flask_stack_jobs_queued`` and ``flask_stack_jobs_dead_letters``, asked of Redis at each
    scrape (a gauge kept by a worker would go stale with the worker); nothing when Redis does not answer."""

    def __init__(self, client: redis.Redis):
        self.client = client

    def collect(self) -> Iterator[Metric]:
        try:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.llen(f"{KEY_PREFIX}{QUEUE}")
                pipe.llen(DEAD_LETTERS)
                queued, dead = pipe.execute()
        except redis.RedisError as error:
            log.warning("queue depth not scraped: %s", error)
            return
        yield GaugeMetricFamily("flask_stack_jobs_queued", "Jobs waiting for a worker", value=queued)
        yield GaugeMetricFamily("flask_stack_jobs_dead_letters", "Jobs given up on (the last 1000 kept)", value=dead)


def count_jobs() -> None:
    """In the worker's processes: each try of a job counted by outcome, and timed."""
    started: dict[str, float] = {}

    @task_prerun.connect(weak=False)
    def begin(task_id: str, **_: Any) -> None:
        started[task_id] = time.perf_counter()

    def finish(task_id: str, task_name: str, outcome: str) -> None:
        metrics.JOBS.labels(task_name, outcome).inc()
        began = started.pop(task_id, None)
        if began is not None:
            metrics.JOB_SECONDS.labels(task_name).observe(time.perf_counter() - began)

    @task_success.connect(weak=False)
    def succeeded(sender: Task[Any, Any], **_: Any) -> None:
        finish(str(sender.request.id), sender.name, "succeeded")

    @task_retry.connect(weak=False)
    def retried(sender: Task[Any, Any], request: Any, **_: Any) -> None:
        finish(request.id, sender.name, "retried")

    @task_failure.connect(weak=False)
    def failed(sender: Task[Any, Any], task_id: str, **_: Any) -> None:
        finish(task_id, sender.name, "failed")
