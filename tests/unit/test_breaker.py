"""The circuit breaker, on a fake clock: closed, open, half-open (one probe), closed again."""

from __future__ import annotations

import threading

import pytest

from api.breaker import BreakerState, CircuitBreaker, CircuitOpen
from fake_clock import FakeClock


class Down(Exception):
    """The dependency failed."""


class Dependency:
    """Counts the calls that reached it; fails while ``down``."""

    def __init__(self):
        self.calls = 0
        self.down = False

    def __call__(self):
        self.calls += 1
        if self.down:
            raise Down("refused")
        return "answer"


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def breaker(clock):
    return CircuitBreaker("store", failure_threshold=3, reset_seconds=0.5, failure_types=(Down,), clock=clock)


def fail(breaker, dependency, times):
    for _ in range(times):
        with pytest.raises(Down):
            breaker.call(dependency)


def test_closed_passes_calls_through(breaker):
    dependency = Dependency()
    assert [breaker.call(dependency) for _ in range(5)] == ["answer"] * 5
    assert breaker.state is BreakerState.CLOSED


def test_opens_after_the_threshold_of_consecutive_failures_and_stops_calling(breaker):
    dependency = Dependency()
    dependency.down = True
    fail(breaker, dependency, 3)
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen) as refused:
        breaker.call(dependency)
    assert dependency.calls == 3, "an open breaker must not call the dependency"
    assert refused.value.retry_after == pytest.approx(0.5)
    assert breaker.retry_after() == 1


def test_a_success_resets_the_count_of_failures(breaker):
    dependency = Dependency()
    dependency.down = True
    fail(breaker, dependency, 2)
    dependency.down = False
    breaker.call(dependency)
    dependency.down = True
    fail(breaker, dependency, 2)
    assert breaker.state is BreakerState.CLOSED


def test_after_the_reset_time_one_probe_goes_through_and_closes_it(breaker, clock):
    dependency = Dependency()
    dependency.down = True
    fail(breaker, dependency, 3)
    clock.now += 0.5
    assert breaker.state is BreakerState.HALF_OPEN
    dependency.down = False
    assert breaker.call(dependency) == "answer"
    assert breaker.state is BreakerState.CLOSED
    assert dependency.calls == 4


def test_a_failed_probe_opens_it_again_for_another_reset_time(breaker, clock):
    dependency = Dependency()
    dependency.down = True
    fail(breaker, dependency, 3)
    clock.now += 0.6
    fail(breaker, dependency, 1)  # the probe
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.call(dependency)
    clock.now += 0.49
    with pytest.raises(CircuitOpen):
        breaker.call(dependency)
    assert dependency.calls == 4


def test_while_a_probe_is_out_every_other_call_is_refused_at_once(breaker, clock):
    dependency = Dependency()
    dependency.down = True
    fail(breaker, dependency, 3)
    clock.now += 1
    probe_started, release_probe = threading.Event(), threading.Event()

    def slow_probe():
        probe_started.set()
        release_probe.wait(5)
        return "back"

    results = []
    prober = threading.Thread(target=lambda: results.append(breaker.call(slow_probe)))
    prober.start()
    probe_started.wait(5)
    with pytest.raises(CircuitOpen):
        breaker.call(dependency)
    release_probe.set()
    prober.join(5)
    assert results == ["back"]
    assert breaker.state is BreakerState.CLOSED
    assert dependency.calls == 3


def test_errors_that_are_not_the_dependencys_do_not_count(breaker):
    def buggy():
        raise KeyError("a bug, not an outage")

    for _ in range(5):
        with pytest.raises(KeyError):
            breaker.call(buggy)
    assert breaker.state is BreakerState.CLOSED


def test_a_probe_that_hits_a_bug_leaves_the_next_call_to_probe(breaker, clock):
    dependency = Dependency()
    dependency.down = True
    fail(breaker, dependency, 3)
    clock.now += 1
    with pytest.raises(KeyError):
        breaker.call(lambda: {}["missing"])
    dependency.down = False
    assert breaker.call(dependency) == "answer"
    assert breaker.state is BreakerState.CLOSED


def test_failures_seen_outside_a_call_count_and_one_that_says_unreachable_opens_at_once(breaker, clock):
    dependency = Dependency()
    breaker.record_failure(Down("a connection opened earlier died"))
    breaker.record_failure(Down("and another"))
    assert breaker.state is BreakerState.CLOSED
    breaker.trip(Down("no answer within the dead-peer bound"))
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(CircuitOpen):
        breaker.call(dependency)
    assert dependency.calls == 0
    clock.elapse(0.5)
    assert breaker.call(dependency) == "answer"  # the probe
    assert breaker.state is BreakerState.CLOSED
