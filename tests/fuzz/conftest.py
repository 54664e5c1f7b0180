"""The fuzz tier: schemathesis against the OpenAPI spec of a running app, directly (`make dev`, as a
developer runs it) and through nginx (the dev compose stack)."""

from __future__ import annotations

import pytest

from api.config import TestConfig

# The fuzzer signs in for every case that spends its token: hundreds of argon2 hashes a run. At
# production's cost (about 0.15 s of CPU each on a 2-core machine) they were most of this tier's
# CPU, taken from the lane running beside it (tests/lanes.py). The contract the tier checks does
# not depend on the cost: both apps hash at the test mode's, as the unit tier does; production's
# parameters are exercised by the other tiers.
CHEAP_HASHES = {
    "ARGON2_TIME_COST": str(TestConfig.DEFAULT_ARGON2["time_cost"]),
    "ARGON2_MEMORY_COST": str(TestConfig.DEFAULT_ARGON2["memory_cost"]),
}


@pytest.fixture(scope="session")
def compose_files() -> list[str]:
    return ["docker-compose.yml", "compose/test-fuzz.yml"]


@pytest.fixture(scope="session")
def stack_settings() -> dict[str, str]:
    # The fuzzer signs in for every case that spends its token, and sends password changes (in the
    # sign-in budget too) one after another: far more than a person does. This tier tests the API's
    # contract through the edge, not the edge's per-address budgets (the system tier does that),
    # so it gets wider ones than its own rate (60 a second, test_schemathesis.py), with room for
    # its bursts (the edge lets 5 through at once).
    return {"SIGN_IN_RATE": "200r/s", "AUTH_RATE": "200r/s", **CHEAP_HASHES}


@pytest.fixture(scope="session")
def dev_server_settings() -> dict[str, str]:
    return CHEAP_HASHES


@pytest.fixture(scope="session")
def stack_project() -> str:
    return "flask-stack-fuzz"
