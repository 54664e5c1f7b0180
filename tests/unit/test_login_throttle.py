"""Per-account login throttling: 429 with Retry-After, per (account, address), never a permanent lock."""

import pytest

from contract import PASSWORD, Api, assert_error
from fake_clock import FakeClock

ATTACKER = {"REMOTE_ADDR": "203.0.113.66"}
OWNER = {"REMOTE_ADDR": "198.51.100.7"}


@pytest.fixture
def clock():
    return FakeClock()


def on_clock(app, clock):
    """The token store's entries (locks, counters) expire by ``clock``."""
    app.extensions["token_store"].inner.clock = clock
    return app


@pytest.fixture
def throttled(app_factory, backend, clock):
    app = app_factory(
        BLACKLIST_STORAGE_TYPE=backend,
        LOGIN_FAILURES_BEFORE_LOCK=3,
        LOGIN_LOCK_BASE_SECONDS=1,
        LOGIN_LOCK_MAX_SECONDS=2,
    )
    api = Api(on_clock(app, clock).test_client())
    api.register("victim@example.com")
    return api


def fail(api, environ, email="victim@example.com"):
    return api.login(email, "wrong password!", environ_base=environ)


def test_repeated_failures_lock_the_pair_with_retry_after(throttled):
    for _ in range(3):
        assert_error(fail(throttled, ATTACKER), 401, "invalid_credentials")
    response = fail(throttled, ATTACKER)
    assert_error(response, 429, "rate_limited")
    assert 1 <= int(response.headers["Retry-After"]) <= 2
    # While locked, even the right password from that address is refused.
    assert_error(throttled.login("victim@example.com", PASSWORD, environ_base=ATTACKER), 429, "rate_limited")


def test_an_attacker_cannot_lock_the_owner_out(throttled):
    for _ in range(6):
        fail(throttled, ATTACKER)
    assert throttled.login("victim@example.com", PASSWORD, environ_base=OWNER).status_code == 200


def test_the_lock_ends_by_itself_and_is_capped(throttled, clock):
    for _ in range(10):
        response = fail(throttled, ATTACKER)
    assert int(response.headers["Retry-After"]) <= 2  # capped at LOGIN_LOCK_MAX_SECONDS
    clock.elapse(2.1)
    assert throttled.login("victim@example.com", PASSWORD, environ_base=ATTACKER).status_code == 200


def test_unknown_accounts_are_throttled_alike(throttled):
    for _ in range(3):
        assert_error(fail(throttled, ATTACKER, "ghost@example.com"), 401, "invalid_credentials")
    assert_error(fail(throttled, ATTACKER, "ghost@example.com"), 429, "rate_limited")


def test_success_clears_the_failure_count(throttled):
    for _ in range(2):
        fail(throttled, OWNER)
    assert throttled.login("victim@example.com", PASSWORD, environ_base=OWNER).status_code == 200
    for _ in range(2):
        assert_error(fail(throttled, OWNER), 401, "invalid_credentials")


def test_email_case_does_not_dodge_the_throttle(throttled):
    for _ in range(3):
        fail(throttled, ATTACKER, "Victim@Example.com")
    assert_error(fail(throttled, ATTACKER, "VICTIM@example.com"), 429, "rate_limited")


def test_behind_one_trusted_proxy_the_client_address_counts(app_factory):
    app = app_factory(TRUSTED_PROXY_HOPS=1, LOGIN_FAILURES_BEFORE_LOCK=2)
    api = Api(app.test_client())
    api.register("victim@example.com")
    proxy = {"REMOTE_ADDR": "172.18.0.5"}
    for _ in range(2):
        api.login(
            "victim@example.com", "wrong password!", environ_base=proxy, headers={"X-Forwarded-For": "203.0.113.66"}
        )
    locked = api.login(
        "victim@example.com", "wrong password!", environ_base=proxy, headers={"X-Forwarded-For": "203.0.113.66"}
    )
    assert_error(locked, 429, "rate_limited")
    owner = api.login("victim@example.com", PASSWORD, environ_base=proxy, headers={"X-Forwarded-For": "198.51.100.7"})
    assert owner.status_code == 200


@pytest.fixture
def sprayed(app_factory, backend, clock):
    """An account that allows 5 failures in all (from any address) and then a 2-second lock."""
    app = app_factory(
        BLACKLIST_STORAGE_TYPE=backend,
        LOGIN_ACCOUNT_FAILURES_BEFORE_LOCK=5,
        LOGIN_ACCOUNT_LOCK_SECONDS=2,
    )
    api = Api(on_clock(app, clock).test_client())
    api.register("victim@example.com")
    assert api.login("victim@example.com", PASSWORD, environ_base=OWNER).status_code == 200  # home
    return api


def botnet(count):
    return [{"REMOTE_ADDR": f"203.0.113.{n}"} for n in range(1, count + 1)]


def test_spraying_one_account_from_many_addresses_is_slowed_account_wide(sprayed):
    for address in botnet(5):  # one guess each: no (account, address) pair is ever locked
        assert_error(fail(sprayed, address), 401, "invalid_credentials")
    response = fail(sprayed, {"REMOTE_ADDR": "203.0.113.99"})
    error = assert_error(response, 429, "rate_limited")
    assert "for this account" in error["message"]
    assert 1 <= int(response.headers["Retry-After"]) <= 2


def test_the_owner_at_a_known_address_is_not_slowed_by_a_spray(sprayed):
    for address in botnet(8):
        fail(sprayed, address)
    assert sprayed.login("victim@example.com", PASSWORD, environ_base=OWNER).status_code == 200


def test_from_a_new_address_the_owner_waits_the_short_account_lock_at_most(sprayed, clock):
    for address in botnet(8):
        fail(sprayed, address)
    travelling = {"REMOTE_ADDR": "192.0.2.44"}
    assert_error(sprayed.login("victim@example.com", PASSWORD, environ_base=travelling), 429, "rate_limited")
    clock.elapse(2.1)  # LOGIN_ACCOUNT_LOCK_SECONDS, never doubled
    assert sprayed.login("victim@example.com", PASSWORD, environ_base=travelling).status_code == 200


def test_other_accounts_are_not_touched_by_a_spray_on_one(sprayed):
    sprayed.register("bystander@example.com")
    for address in botnet(8):
        fail(sprayed, address)
    new_address = {"REMOTE_ADDR": "192.0.2.45"}
    assert sprayed.login("bystander@example.com", PASSWORD, environ_base=new_address).status_code == 200
