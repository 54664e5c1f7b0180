"""The metrics endpoint of a gunicorn server: every worker writes its values into files of a
directory of its own run (prometheus_client's multiprocess mode), and the master serves their sum
at ``http://<METRICS_ADDRESS>:<METRICS_PORT>/metrics``, apart from the app's port, so nginx never
proxies it. The directory must be set before the app (or prometheus_client, which chooses its mode
when it is imported) is imported: gunicorn.conf.py calls ``prepare`` at its top, and this module
imports prometheus_client only inside the functions that run later."""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def prepare(directory: str) -> None:
    """An empty directory for this run's values (a restart must not add the last run's counts)."""
    path = Path(directory)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def serve(address: str, port: int) -> None:
    """In the master: answer scrapes with the sum over every worker, on a thread of its own."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
    start_http_server(port, addr=address, registry=registry)


def forget(pid: int) -> None:
    """A worker is gone: its gauges stop counting (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
