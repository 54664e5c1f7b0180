"""The fuzz tier: schemathesis against the OpenAPI spec of a running app, directly (`make dev`, as a
developer runs it) and through nginx (the dev compose stack)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def stack_settings() -> dict[str, str]:
    # The fuzzer signs in for every case that spends its token: far more than a person does. This
    # tier tests the API's contract through the edge, not the edge's per-address sign-in budget
    # (the system tier does that), so it gets a wider one.
    return {"SIGN_IN_RATE": "50r/s", "AUTH_RATE": "100r/s"}


@pytest.fixture(scope="session")
def stack_project() -> str:
    return "flask-stack-fuzz"
