"""Argon2id password hashing, with a dummy verification so unknown users cost what real ones do,
and a gate that bounds how many hashes run at once in this container."""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import Flask, current_app

from ..errors import ApiError

# Never a real password: verified against when the e-mail is unknown, to spend the same time.
_DUMMY_PASSWORD = "flask-stack dummy password, never valid"  # noqa: S105 - not a credential


class HashGate:
    """At most ``slots`` Argon2 computations at once across every gunicorn worker and thread of the
    container (flock on files in its /tmp). Each takes tens of MiB and a core for a good fraction of
    a second: unbounded, a burst of logins exhausts the container's memory (the OOM killer ends
    workers mid-request) and starves every other request of CPU. Measured by `make bench`."""

    def __init__(self, slots: int, wait_seconds: float, directory: str | None = None):
        base = Path(directory or tempfile.gettempdir())
        self.paths = [base / f"flask-stack-argon2-{n}.lock" for n in range(max(1, slots))]
        self.wait_seconds = wait_seconds

    @contextmanager
    def slot(self) -> Iterator[None]:
        deadline = time.monotonic() + self.wait_seconds
        order = random.sample(self.paths, len(self.paths))
        while True:
            for path in order:
                handle = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(handle)
                    continue
                try:
                    yield
                finally:
                    os.close(handle)  # closing releases the lock
                return
            if time.monotonic() > deadline:
                raise ApiError(
                    503,
                    "service_unavailable",
                    "Too many sign-ins at once; try again in a moment",
                    headers={"Retry-After": "2"},
                )
            time.sleep(0.005)


class Passwords:
    def __init__(self, time_cost: int, memory_cost: int, parallelism: int, gate: HashGate):
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)
        self.gate = gate
        self._dummy_hash: str | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Passwords:
        gate = HashGate(config["PASSWORD_HASH_CONCURRENCY"], config["PASSWORD_HASH_WAIT_SECONDS"])
        return cls(config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_COST"], config["ARGON2_PARALLELISM"], gate)

    def hash(self, password: str) -> str:
        with self.gate.slot():
            return self.hasher.hash(password)

    def verify(self, password_hash: str, password: str) -> bool:
        with self.gate.slot():
            try:
                return self.hasher.verify(password_hash, password)
            except (VerificationError, InvalidHashError):
                return False

    def needs_rehash(self, password_hash: str) -> bool:
        return self.hasher.check_needs_rehash(password_hash)

    def verify_dummy(self, password: str) -> bool:
        """Spend one verification's worth of work, as for a real user; always False."""
        if self._dummy_hash is None:
            self._dummy_hash = self.hash(_DUMMY_PASSWORD)
        self.verify(self._dummy_hash, password)
        return False


def init_app(app: Flask) -> None:
    app.extensions["passwords"] = Passwords.from_config(app.config)


def get_passwords() -> Passwords:
    return cast(Passwords, current_app.extensions["passwords"])
