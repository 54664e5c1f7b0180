"""gunicorn's access log as one JSON object per line (production), properly escaped: gunicorn's own
format strings only escape double quotes.

The request thread only gathers the entry and queues it; one thread per worker turns entries into
lines and writes them through gunicorn's access handlers. So a request never waits for stdout
(a pipe the container runtime drains) or for the handler's lock while another thread writes: the
benchmark's profile had found a quarter of the busy time there. The lines are the same.
"""

from __future__ import annotations

import json
import os
import queue
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

from gunicorn.glogging import Logger

STOP = None  # queued to end the writer


class JsonAccessLogger(Logger):  # type: ignore[misc]  # gunicorn has no type information
    def __init__(self, cfg: Any):
        super().__init__(cfg)
        self._writer_lock = threading.Lock()
        self._writer: AccessLogWriter | None = None

    def access(self, resp: Any, req: Any, environ: dict[str, Any], request_time: timedelta) -> None:
        if not self.access_log_enabled:
            return
        atoms = self.atoms(resp, req, environ, request_time)
        entry = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "remote": atoms["h"],
            "method": atoms["m"],
            "path": atoms["U"],
            "query": atoms["q"],
            "status": int(atoms["s"]) if str(atoms["s"]).isdigit() else atoms["s"],
            "bytes": atoms["B"],
            "duration_us": atoms["D"],
            "request_id": atoms.get("{x-request-id}o", "-"),
            "pid": int(atoms["p"].strip("<>")),
            "user_agent": atoms["a"],
        }
        self.writer().entries.put(entry)

    def writer(self) -> AccessLogWriter:
        """This process's writer, started on its first request (the master builds this object
        before it forks the workers, and a thread does not survive a fork)."""
        writer = self._writer
        if writer is None or writer.pid != os.getpid():
            with self._writer_lock:
                writer = self._writer
                if writer is None or writer.pid != os.getpid():
                    writer = self._writer = AccessLogWriter(self)
        return writer

    def close_access_log(self) -> None:
        """Write what is queued, then stop the writer (gunicorn.conf.py's worker_exit)."""
        writer = self._writer
        if writer is not None and writer.pid == os.getpid():
            writer.close()


class AccessLogWriter:
    def __init__(self, logger: JsonAccessLogger):
        self.pid = os.getpid()
        self.logger = logger
        self.entries: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self.thread = threading.Thread(target=self.write, name="access-log", daemon=True)
        self.thread.start()

    def write(self) -> None:
        while (entry := self.entries.get()) is not STOP:
            self.logger.access_log.info(json.dumps(entry, ensure_ascii=False))

    def close(self, timeout: float = 5.0) -> None:
        self.entries.put(STOP)
        self.thread.join(timeout)
