"""A circuit breaker: when a dependency keeps failing, stop waiting for it.

Without one, every request to a dead Redis or Postgres waits for its own connect or read timeout
before it fails (measured: ~5 requests a second instead of ~350, several seconds each). With one,
after ``failure_threshold`` consecutive failures the breaker *opens*: calls fail at once for
``reset_seconds``. Then it is *half-open*: the next call goes through as a probe while the others
keep failing at once; the probe's success *closes* the breaker, its failure opens it again.

One breaker per dependency per process (each gunicorn worker learns on its own; a fork starts from
the parent's state, which is closed at start-up). ``flask_stack_circuit_open`` (api/metrics.py) is
1 while it is open in any worker.
"""

from __future__ import annotations

import enum
import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from . import metrics

T = TypeVar("T")
log = logging.getLogger(__name__)


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitOpen(RuntimeError):
    """Refused without trying: the dependency failed recently and is not being probed by this call."""

    def __init__(self, name: str, retry_after: float):
        super().__init__(f"{name}: not tried, it failed recently (circuit open)")
        self.retry_after = retry_after


def refused_without_trying(error: BaseException | None) -> bool:
    """Whether a breaker refused the call somewhere in ``error``'s chain (SQLAlchemy keeps the
    driver's error in ``orig``; our wrappers chain theirs with ``from``)."""
    while error is not None:
        if isinstance(error, CircuitOpen):
            return True
        error = getattr(error, "orig", None) or error.__cause__
    return False


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failure_threshold: int,
        reset_seconds: float,
        failure_types: tuple[type[BaseException], ...] = (Exception,),
        clock: Callable[[], float] = time.monotonic,
    ):
        self.name = name
        self.failure_threshold = max(1, failure_threshold)
        self.reset_seconds = reset_seconds
        self.failure_types = failure_types
        self.clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        metrics.BREAKER_OPEN.labels(name).set(0)
        self._failures = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> BreakerState:
        with self._lock:
            if self._state is BreakerState.OPEN and self._cooled_down():
                return BreakerState.HALF_OPEN
            return self._state

    def retry_after(self) -> int:
        """Whole seconds a client should wait before trying again (at least 1)."""
        with self._lock:
            remaining = self.reset_seconds - (self.clock() - self._opened_at)
        return max(1, math.ceil(remaining))

    def call(self, operation: Callable[[], T]) -> T:
        """Run ``operation`` unless the breaker refuses; raise ``CircuitOpen`` when it does."""
        probe = self._admit()
        try:
            result = operation()
        except self.failure_types as error:
            self._record_failure(probe, error)
            raise
        except BaseException:
            # Not the dependency's fault (a bug, a bad argument): it says nothing about its health.
            self._release(probe)
            raise
        self._record_success()
        return result

    def record_failure(self, error: BaseException) -> None:
        """A failure of the dependency seen outside ``call`` (on a connection ``call`` opened
        earlier): it counts as a failed call would."""
        self._record_failure(False, error)

    def trip(self, error: BaseException) -> None:
        """Open now, whatever the count: a failure that already says the dependency is unreachable
        (it stopped answering), where waiting for more would cost more requests the same wait."""
        with self._lock:
            if self._state is BreakerState.OPEN:
                return
            self._probing = False
            self._open()
        log.error(
            "%s: circuit open at once (%s: %s); failing fast, probing every %.1fs",
            self.name,
            type(error).__name__,
            error,
            self.reset_seconds,
        )

    def _cooled_down(self) -> bool:
        return self.clock() - self._opened_at >= self.reset_seconds

    def _admit(self) -> bool:
        """Whether this call may go through; True when it is the half-open probe."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return False
            if self._state is BreakerState.OPEN and self._cooled_down():
                self._state = BreakerState.HALF_OPEN
            if self._state is BreakerState.HALF_OPEN and not self._probing:
                self._probing = True
                return True
            remaining = self.reset_seconds - (self.clock() - self._opened_at)
        raise CircuitOpen(self.name, max(0.0, remaining))

    def _record_failure(self, probe: bool, error: BaseException) -> None:
        with self._lock:
            if probe:
                self._probing = False
                self._open()
                return
            self._failures += 1
            if self._state is BreakerState.CLOSED and self._failures >= self.failure_threshold:
                self._open()
                # Once per outage, not once per refused request: an outage must not flood the log.
                log.error(
                    "%s: circuit open after %d failures in a row (last: %s: %s); failing fast, probing every %.1fs",
                    self.name,
                    self._failures,
                    type(error).__name__,
                    error,
                    self.reset_seconds,
                )

    def _record_success(self) -> None:
        with self._lock:
            if self._state is not BreakerState.CLOSED:
                log.warning("%s: circuit closed, it answers again", self.name)
                metrics.BREAKER_OPEN.labels(self.name).set(0)
            self._state = BreakerState.CLOSED
            self._failures = 0
            self._probing = False

    def _release(self, probe: bool) -> None:
        if probe:
            with self._lock:
                self._probing = False

    def _open(self) -> None:
        self._state = BreakerState.OPEN
        self._opened_at = self.clock()
        metrics.BREAKER_OPEN.labels(self.name).set(1)
