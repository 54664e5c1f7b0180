"""The fuzz tier: schemathesis against the OpenAPI spec of a running app, directly (`make dev`, as a
developer runs it) and through nginx (the dev compose stack)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def stack_settings() -> dict[str, str]:
    # The fuzzer signs in for every case that spends its token, and sends password changes (in the
    # sign-in budget too) one after another: far more than a person does. This tier tests the API's
    # contract through the edge, not the edge's per-address budgets (the system tier does that),
    # so it gets wider ones than its own rate (60 a second, test_schemathesis.py), with room for
    # its bursts (the edge lets 5 through at once).
    return {"SIGN_IN_RATE": "200r/s", "AUTH_RATE": "200r/s"}


@pytest.fixture(scope="session")
def stack_project() -> str:
    return "flask-stack-fuzz"
