"""The metrics endpoint of a gunicorn server: every worker writes its values into files of a
directory of its own run (prometheus_client's multiprocess mode), and the master serves their sum
at ``http://<METRICS_ADDRESS>:<METRICS_PORT>/metrics``, apart from the app's port, so nginx never
proxies it. The directory must be set before the app (or prometheus_client, which chooses its mode
when it is imported) is imported: gunicorn.conf.py calls ``prepare`` at its top, and this module
imports prometheus_client only inside the functions that run later."""

from __future__ import annotations

import os
import shutil
import urllib.request
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from prometheus_client.registry import Collector


def prepare(directory: str) -> None:
    """An empty directory for this run's values (a restart must not add the last run's counts)."""
    path = Path(directory)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)


def serve(address: str, port: int, app_bind: str | None, collectors: Iterable[Collector] = ()) -> None:
    """In the master: answer scrapes with the sum over every worker, on a thread of its own, and
    with whether the app is ready, asked of its own ``/api/readyz`` through a worker (the master
    has no database or Redis connection, and the workers' answer is the one that counts). The job
    worker (background.py) has no app port (``app_bind`` None) and adds collectors of its own."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
    if app_bind and not app_bind.startswith("unix:"):
        registry.register(ReadinessCollector(f"http://127.0.0.1:{app_bind.rpartition(':')[2]}/api/readyz"))
    for collector in collectors:
        registry.register(collector)
    start_http_server(port, addr=address, registry=registry)


class ReadinessCollector:
    """``flask_stack_ready``: 1 when ``/api/readyz`` answers 200 within the time, else 0."""

    def __init__(self, url: str, timeout: float = 5.0):
        self.url = url
        self.timeout = timeout

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        try:
            with urllib.request.urlopen(self.url, timeout=self.timeout) as response:  # noqa: S310 - our own loopback URL
                ready = response.status == 200
        except (OSError, ValueError):  # refused, timed out, or 503 (HTTPError is an OSError)
            ready = False
        yield GaugeMetricFamily("flask_stack_ready", "1 when the app answers /api/readyz with 200", value=int(ready))


def forget(pid: int) -> None:
    """A worker is gone: its gauges stop counting (its counters stay in the sums)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # prometheus_client leaves it untyped
