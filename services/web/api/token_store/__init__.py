"""The token store: revoked tokens, spent refresh tokens, token versions, cached profiles, login
throttles. One word for it throughout the code; the setting keeps the name existing deployments
use: ``BLACKLIST_STORAGE_TYPE`` (redis, database or memory) chooses its backend. Its keys: ``keys.py``.

Every backend is the same small key-value store with expiry, so the rules that use it (revocation,
rotation, throttling) are written once, in ``api.auth``.
Any failure to reach the store raises ``StoreUnavailable``; callers let it propagate, and the app
answers 503: fail closed, never "not revoked". Every backend sits behind a circuit breaker
(``GuardedStore``), so a store that is down costs each request nothing but the 503.

A store that answers but refuses a command (Redis's ACL: ``NOPERM``) raises ``StoreMisconfigured``
instead: a configuration bug, not an outage. It is logged at ERROR with the command, counted apart
(``flask_stack_token_store_denied_total``), does not open the breaker, and answers 500; ``check()``
runs every operation, so readiness and ``flask deploy`` fail on it before a release goes live.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TypeVar, cast

from flask import Flask, current_app

from .. import metrics
from ..breaker import CircuitBreaker, CircuitOpen
from . import keys

T = TypeVar("T")
log = logging.getLogger(__name__)
PROBE_SECONDS = 10.0


class StoreUnavailable(RuntimeError):
    """The token store could not be reached or did not answer."""

    retry_after = 1  # seconds: the breaker lets a probe through within a second


class StoreMisconfigured(RuntimeError):
    """The token store answered, but refused a command it must run: its configuration is wrong."""


# (key, value, seconds to live or None for no expiry)
Entry = tuple[str, str, "float | None"]


class TokenStore(ABC):
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

    def check(self) -> None:
        """Run every operation the app uses, on probe keys of this process: a store that answers a
        ping but refuses a command (an ACL that misses one) fails here, not on a user's request."""
        probe = keys.readiness_probe(f"{socket.gethostname()}-{os.getpid()}")
        counter = probe + ":count"
        self.ping()
        self.set_many([(probe, "1", PROBE_SECONDS)])
        self.get_many([probe])
        self.add(probe, "1", PROBE_SECONDS)
        self.incr(counter, PROBE_SECONDS)
        self.incr(counter)
        self.ttl(probe)
        self.delete(probe, counter)


class GuardedStore(TokenStore):
    """A backend behind a circuit breaker: once it has failed ``BREAKER_FAILURES`` times in a row,
    calls fail at once (``StoreUnavailable``) until a probe a moment later finds it back."""

    def __init__(self, inner: TokenStore, breaker: CircuitBreaker):
        self.inner = inner
        self.breaker = breaker
        self.kind = inner.kind

    def _call(self, name: str, operation: Callable[[], T]) -> T:
        """``operation`` through the breaker, timed and counted by ``name`` (api/metrics.py)."""
        started = time.perf_counter()
        try:
            return self.breaker.call(operation)
        except CircuitOpen as refused:
            metrics.STORE_ERRORS.labels(name).inc()
            raise StoreUnavailable(str(refused)) from refused
        except StoreUnavailable:
            metrics.STORE_ERRORS.labels(name).inc()
            raise
        except StoreMisconfigured as refused:
            metrics.STORE_DENIED.labels(name).inc()
            log.error("token store refused %s: %s (compose/redis/app.acl lists what it may run)", name, refused)
            raise
        finally:
            metrics.STORE_LATENCY.labels(name).observe(time.perf_counter() - started)

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        return self._call("get_many", lambda: self.inner.get_many(keys))

    def set_many(self, entries: Sequence[Entry]) -> None:
        self._call("set_many", lambda: self.inner.set_many(entries))

    def add(self, key: str, value: str, ttl: float) -> str | None:
        return self._call("add", lambda: self.inner.add(key, value, ttl))

    def incr(self, key: str, ttl: float | None = None) -> int:
        return self._call("incr", lambda: self.inner.incr(key, ttl))

    def ttl(self, key: str) -> float | None:
        return self._call("ttl", lambda: self.inner.ttl(key))

    def delete(self, *keys: str) -> None:
        self._call("delete", lambda: self.inner.delete(*keys))

    def ping(self) -> None:
        self._call("ping", self.inner.ping)

    def prune(self) -> int:
        return self._call("prune", self.inner.prune)

    def describe(self) -> str:
        return self.inner.describe()

    def check(self) -> None:
        self.inner.check()


def create_backend(app: Flask) -> TokenStore:
    kind = app.config["BLACKLIST_STORAGE_TYPE"]
    if kind == "redis":
        from .redis_store import RedisStore

        return RedisStore.from_config(app.config)
    if kind == "database":
        from .database_store import DatabaseStore

        return DatabaseStore()
    from .memory_store import MemoryStore

    return MemoryStore()


def create_store(app: Flask) -> GuardedStore:
    breaker = CircuitBreaker(
        "token store",
        app.config["BREAKER_FAILURES"],
        app.config["BREAKER_RESET_SECONDS"],
        failure_types=(StoreUnavailable,),
    )
    return GuardedStore(create_backend(app), breaker)


def init_app(app: Flask) -> TokenStore:
    store = create_store(app)
    app.extensions["token_store"] = store
    app.extensions.setdefault("breakers", {})["token store"] = store.breaker
    return store


def current_token_store() -> TokenStore:
    return cast(TokenStore, current_app.extensions["token_store"])
