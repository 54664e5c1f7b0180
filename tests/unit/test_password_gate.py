"""The gate that bounds Argon2 computations across processes and threads (real locks, real threads)."""

import threading
import time

import pytest

from api.auth.passwords import HashGate
from api.errors import ApiError


def test_no_more_than_the_slots_at_once(tmp_path):
    gate = HashGate(slots=2, wait_seconds=10, directory=str(tmp_path))
    inside, peak, lock = 0, 0, threading.Lock()

    def work():
        nonlocal inside, peak
        with gate.slot():
            with lock:
                inside += 1
                peak = max(peak, inside)
            time.sleep(0.05)
            with lock:
                inside -= 1

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert peak == 2


def test_a_caller_that_waits_too_long_gets_a_503(tmp_path):
    gate = HashGate(slots=1, wait_seconds=0.2, directory=str(tmp_path))
    holding = threading.Event()
    release = threading.Event()

    def hold():
        with gate.slot():
            holding.set()
            release.wait(5)

    holder = threading.Thread(target=hold)
    holder.start()
    holding.wait(5)
    try:
        with pytest.raises(ApiError) as refused, gate.slot():
            pass
        assert refused.value.status == 503 and refused.value.headers["Retry-After"]
    finally:
        release.set()
        holder.join()
    with gate.slot():  # free again
        pass


def test_the_gate_holds_across_processes(tmp_path):
    """Two gunicorn workers are two processes: a slot held by one blocks the other."""
    import multiprocessing

    gate = HashGate(slots=1, wait_seconds=0.2, directory=str(tmp_path))
    ready = multiprocessing.Event()
    done = multiprocessing.Event()

    def hold_in_another_process():
        with HashGate(slots=1, wait_seconds=1, directory=str(tmp_path)).slot():
            ready.set()
            done.wait(5)

    process = multiprocessing.get_context("fork").Process(target=hold_in_another_process)
    process.start()
    try:
        assert ready.wait(5)
        with pytest.raises(ApiError), gate.slot():
            pass
    finally:
        done.set()
        process.join(5)
