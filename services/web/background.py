"""The background jobs' processes (api/jobs.py), on the app's settings:

    celery -A background worker                         the worker: runs the queued jobs
    celery -A background beat -S api.jobs:Scheduler     the scheduler: queues each chore when it is due

The worker serves its metrics on METRICS_PORT (every process's values summed, as gunicorn's master
does for web) and keeps /tmp/worker-alive fresh while it answers pings through the queue.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from typing import Any

from celery.signals import setup_logging, worker_ready, worker_shutdown

from runtime.environment import load_environment
from serving import metrics as metrics_endpoint

_, settings = load_environment(os.environ)
METRICS_PORT = int(settings.get("METRICS_PORT") or 0)
IS_WORKER = "worker" in sys.argv[1:]
# Before the app is imported: prometheus_client chooses its mode when it is imported.
if METRICS_PORT and IS_WORKER:
    metrics_endpoint.prepare(settings.get("METRICS_DIR") or "/tmp/flask-stack-metrics")  # noqa: S108 - a tmpfs

from api import create_app, jobs  # noqa: E402 - after the metrics' mode is chosen

flask_app = create_app()
if not flask_app.config["JOBS_REDIS_URL"]:
    # A worker or scheduler with no queue would look healthy and do nothing: refuse, and say why.
    sys.exit("background jobs: no queue is configured (JOBS_REDIS_URL, or JOBS_REDIS_DB with REDIS_HOST)")
celery = jobs.current_celery_of(flask_app)
stop_pinging = threading.Event()


@setup_logging.connect
def keep_the_apps_logging(**_: Any) -> None:
    """The app configured logging (its format, its handlers): Celery's own lines (a job received,
    succeeded, failed) go the same way, and Celery configures nothing."""
    celery_log = logging.getLogger("celery")
    celery_log.handlers = list(flask_app.logger.handlers)
    celery_log.setLevel(flask_app.logger.level)
    celery_log.propagate = False


@worker_ready.connect
def start_watching(sender: Any, **_: Any) -> None:
    hostname = sender.hostname
    threading.Thread(
        target=jobs.keep_worker_alive_file, args=(celery, hostname, stop_pinging), name="alive", daemon=True
    ).start()
    if METRICS_PORT:
        client = jobs.queue_client(flask_app)
        collectors = [jobs.QueueCollector(client)] if client is not None else []
        metrics_endpoint.serve(settings.get("METRICS_ADDRESS") or "0.0.0.0", METRICS_PORT, None, collectors)  # noqa: S104


@worker_shutdown.connect
def stop_watching(**_: Any) -> None:
    stop_pinging.set()


if IS_WORKER:
    jobs.count_jobs()
