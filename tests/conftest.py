"""Shared by every tier: the compose stack fixtures (compose_ready, compose_files, stack_settings,
stack, production, any_stack) and `make dev` (dev_server) for the tiers that use them, what each
test costs (timings), the `docker` mark on every test that needs an engine, and the load lock."""

import fcntl
from pathlib import Path

import pytest

pytest_plugins = ["compose_stack", "dev_server", "servers", "timings"]

TESTS = Path(__file__).resolve().parent
DOCKER_TIERS = {"integration", "system", "browser"}
LOAD_LOCK = TESTS.parent / "test-artifacts" / "load.lock"


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(item.path).relative_to(TESTS).parts[0]
        if tier in DOCKER_TIERS or "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(autouse=True)
def one_load_at_a_time(request):
    """A test marked `load` (a flood, a bound on latency) holds the load lock while it runs: with
    lanes side by side (tests/lanes.py), no two such tests load this 2-core machine at once. Its
    stacks are up before it waits (they are fixtures of a wider scope)."""
    if request.node.get_closest_marker("load") is None:
        yield
        return
    LOAD_LOCK.parent.mkdir(exist_ok=True)
    with LOAD_LOCK.open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
