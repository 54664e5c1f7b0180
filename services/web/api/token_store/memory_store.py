"""In-process backend for development and tests: lost on restart, not shared between workers."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from . import Entry, TokenStore


class MemoryStore(TokenStore):
    kind = "memory"

    def __init__(self, clock: Callable[[], float] = time.time):
        self.clock = clock
        self.lock = threading.Lock()
        self.entries: dict[str, tuple[str, float | None]] = {}

    def _live(self, key: str) -> tuple[str, float | None] | None:
        entry = self.entries.get(key)
        if entry is not None and entry[1] is not None and entry[1] <= self.clock():
            del self.entries[key]
            return None
        return entry

    def _expiry(self, ttl: float | None) -> float | None:
        return None if ttl is None else self.clock() + ttl

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        with self.lock:
            return [entry[0] if (entry := self._live(k)) else None for k in keys]

    def set_many(self, entries: Sequence[Entry]) -> None:
        with self.lock:
            for key, value, ttl in entries:
                self.entries[key] = (value, self._expiry(ttl))

    def add(self, key: str, value: str, ttl: float) -> str | None:
        with self.lock:
            existing = self._live(key)
            if existing is not None:
                return existing[0]
            self.entries[key] = (value, self._expiry(ttl))
            return None

    def incr(self, key: str, ttl: float | None = None) -> int:
        with self.lock:
            existing = self._live(key)
            if existing is None:
                self.entries[key] = ("1", self._expiry(ttl))
                return 1
            count = int(existing[0]) + 1
            self.entries[key] = (str(count), existing[1])
            return count

    def ttl(self, key: str) -> float | None:
        with self.lock:
            entry = self._live(key)
        if entry is None or entry[1] is None:
            return None
        return entry[1] - self.clock()

    def delete(self, *keys: str) -> None:
        with self.lock:
            for key in keys:
                self.entries.pop(key, None)

    def ping(self) -> None:
        return None

    def prune(self) -> int:
        with self.lock:
            now = self.clock()
            expired = [k for k, (_, exp) in self.entries.items() if exp is not None and exp <= now]
            for key in expired:
                del self.entries[key]
        return len(expired)
