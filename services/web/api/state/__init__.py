"""Where auth state lives: revoked tokens, spent refresh tokens, token versions, login failures.

Every backend is the same small key-value store with expiry, so the rules that use it (revocation,
rotation, throttling) are written once, in ``api.auth``. ``BLACKLIST_STORAGE_TYPE`` picks the backend.
Any failure to reach the store raises ``StoreUnavailable``; callers let it propagate, and the app
answers 503: fail closed, never "not revoked".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

from flask import Flask, current_app


class StoreUnavailable(RuntimeError):
    """The auth state store could not be reached or did not answer."""


# (key, value, seconds to live or None for no expiry)
Entry = tuple[str, str, "float | None"]


class StateStore(ABC):
    kind: str

    @abstractmethod
    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        """Values of live keys, None for absent or expired ones; one round trip."""

    @abstractmethod
    def set_many(self, entries: Sequence[Entry]) -> None:
        """Write every entry; one round trip."""

    @abstractmethod
    def add(self, key: str, value: str, ttl: float) -> str | None:
        """Set ``key`` only if it is absent, atomically. None when set; else the value already there."""

    @abstractmethod
    def incr(self, key: str, ttl: float | None = None) -> int:
        """Add one and return the count; a key created here expires after ``ttl``."""

    @abstractmethod
    def ttl(self, key: str) -> float | None:
        """Seconds left for a live key with an expiry; None otherwise."""

    @abstractmethod
    def delete(self, *keys: str) -> None: ...

    @abstractmethod
    def ping(self) -> None:
        """Raise StoreUnavailable unless the store answers."""

    def prune(self) -> int:
        """Remove expired entries where the backend does not do it itself; return how many."""
        return 0

    def describe(self) -> str:
        return self.kind


def create_store(app: Flask) -> StateStore:
    kind = app.config["BLACKLIST_STORAGE_TYPE"]
    if kind == "redis":
        from .redis_store import RedisStore

        return RedisStore.from_config(app.config)
    if kind == "database":
        from .database_store import DatabaseStore

        return DatabaseStore()
    from .memory_store import MemoryStore

    return MemoryStore()


def init_app(app: Flask) -> StateStore:
    store = create_store(app)
    app.extensions["auth_state"] = store
    return store


def state_store() -> StateStore:
    return current_app.extensions["auth_state"]
