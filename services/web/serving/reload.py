"""gunicorn's polling reloader (`--reload`, the development stacks) without a race.

gunicorn's own notes each file's modification time the first time it looks, which is after the
worker has imported the app. A file saved again in between (a second save, a formatter that
rewrites on save) was never noticed: the worker served the older code until the next edit. This
one measures from the worker's start: a file changed since the worker began importing the app is a
change, and the worker restarts with it."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from gunicorn.reloader import Reloader

# A file dated more than this ahead of the clock (a host whose clock runs ahead of the container's)
# is not taken for a change on first sight, or every new worker would reload at once, forever.
FUTURE_SLACK_SECONDS = 1.0


class SinceStartReloader(Reloader):  # type: ignore[misc]  # gunicorn ships no types
    def __init__(
        self,
        extra_files: list[str] | None = None,
        interval: float = 1,
        callback: Callable[[str], None] | None = None,
    ):
        super().__init__(extra_files, interval, callback)
        # gunicorn makes the reloader before the worker imports the app (Worker.init_process).
        self.started = time.time()

    def first_seen(self, mtime: float) -> float:
        """What a file's time is compared with the first time it is looked at."""
        if mtime > time.time() + FUTURE_SLACK_SECONDS:
            return mtime
        return min(mtime, self.started)

    def changed_files(self, mtimes: dict[str, float]) -> list[str]:
        """One look at every file: those changed since the last look (or since the start)."""
        changed = []
        for filename in self.get_files():
            try:
                mtime = os.stat(filename).st_mtime
            except OSError:
                continue
            if mtime > mtimes.setdefault(filename, self.first_seen(mtime)):
                changed.append(filename)
            mtimes[filename] = max(mtime, mtimes[filename])
        return changed

    def run(self) -> None:
        mtimes: dict[str, float] = {}
        while True:
            for filename in self.changed_files(mtimes):
                if self._callback:
                    self._callback(filename)
            time.sleep(self._interval)
