"""Shared by every tier: the compose stack fixtures (compose_ready, compose_files, stack_settings,
stack, production, any_stack) and `make dev` (dev_server) for the tiers that use them, what each
test costs (timings), and the `docker` mark on every test that needs an engine."""

from pathlib import Path

import pytest

pytest_plugins = ["compose_stack", "dev_server", "servers", "timings"]

TESTS = Path(__file__).resolve().parent
DOCKER_TIERS = {"integration", "system", "browser"}


def pytest_collection_modifyitems(items):
    for item in items:
        tier = Path(item.path).relative_to(TESTS).parts[0]
        if tier in DOCKER_TIERS or "stack" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
