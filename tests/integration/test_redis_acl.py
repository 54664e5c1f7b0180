"""The app's Redis user as production makes it (compose/redis/app.acl) against the token store's
real traffic: the ACL allows exactly the commands the store sends, and a store whose ACL misses one
says so: a 500 and an ERROR naming the command, readiness failing and `flask deploy` refusing."""

import inspect
import logging
import secrets
import time
import uuid
from contextlib import nullcontext

import pytest
import redis

from api import create_app
from api.cli import deploy_command
from api.token_store import StoreMisconfigured
from api.token_store.redis_store import RedisStore
from contract import assert_error
from redis_acl import allowed_commands, app_rules
from store_contract import StoreContract

# What this module's own admin connection runs, and the handshake (AUTH, HELLO), which Redis lets
# every user run whatever its ACL says.
NOT_THE_STORES = {"auth", "hello", "info", "config|resetstat", "acl|setuser", "acl|deluser"}


@pytest.fixture
def admin(redis_server):
    client = redis.Redis(host="127.0.0.1", port=int(redis_server.get_exposed_port(6379)), decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def app_user_url(redis_server, admin):
    """A URL for a new Redis user with the given rules (the production app user's by default), on
    database 1, so that SELECT is sent as a REDIS_URL naming a database makes it."""
    names = []

    def make(rules: list[str]) -> str:
        name, password = f"app-{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(24)
        admin.execute_command("ACL", "SETUSER", name, "reset", "on", f">{password}", *rules)
        names.append(name)
        return f"redis://{name}:{password}@127.0.0.1:{redis_server.get_exposed_port(6379)}/1"

    yield make
    for name in names:
        admin.execute_command("ACL", "DELUSER", name)


def store_for(url: str) -> RedisStore:
    # Keys under "auth:", the only ones the app user may touch (REDIS_KEY_PREFIX in production).
    prefix = f"auth:acl-{uuid.uuid4().hex[:8]}:"
    return RedisStore.from_config({"REDIS_URL": url, "REDIS_SOCKET_TIMEOUT": 1.0, "REDIS_KEY_PREFIX": prefix})


def run_the_whole_contract(url: str) -> None:
    """The store's own check of every operation, then every test of the store contract, each on a
    store of its own, as the contract's fixtures give it."""
    store_for(url).check()
    contract = StoreContract()
    for name, test in inspect.getmembers(contract, inspect.ismethod):
        if name.startswith("test_"):
            fixtures = {"store": store_for(url), "elapse": time.sleep, "store_in_thread": nullcontext}
            test(**{parameter: fixtures[parameter] for parameter in inspect.signature(test).parameters})


def commands_run(admin) -> set[str]:
    return {name.removeprefix("cmdstat_") for name in admin.info("commandstats")} - NOT_THE_STORES


def test_the_acl_allows_exactly_the_commands_the_store_sends(admin, app_user_url):
    rules = app_rules()
    url = app_user_url(rules)
    admin.config_resetstat()
    run_the_whole_contract(url)  # as the production app user: a refused command fails it here
    assert commands_run(admin) == allowed_commands(rules)


@pytest.mark.parametrize("command", sorted(allowed_commands(app_rules())))
def test_a_command_missing_from_the_acl_is_named_as_a_misconfiguration(app_user_url, command):
    url = app_user_url([rule for rule in app_rules() if rule != f"+{command}"])
    with pytest.raises(StoreMisconfigured, match=f"the '{command}' command"):
        run_the_whole_contract(url)


@pytest.fixture
def misconfigured_app(settings, app_user_url):
    """The app on a Redis user whose ACL misses INCRBY (the bug production had), after `flask deploy`
    (which upgrades the schema, then refuses)."""
    url = app_user_url([rule for rule in app_rules() if rule != "+incrby"])
    app = create_app({**settings, "REDIS_URL": url, "REDIS_KEY_PREFIX": "auth:"})
    app.deployed = app.test_cli_runner().invoke(deploy_command)
    yield app
    with app.app_context():
        from api.extensions import db

        db.engine.dispose()


def test_flask_deploy_refuses_a_store_that_refuses_a_command(misconfigured_app):
    deployed = misconfigured_app.deployed
    assert deployed.exit_code != 0
    assert "no permissions to run the 'incrby' command" in deployed.output
    assert "compose/redis/app.acl" in deployed.output


def test_a_store_that_refuses_a_command_is_a_500_an_error_log_and_unready(misconfigured_app, caplog):
    from api.metrics import STORE_DENIED

    client = misconfigured_app.test_client()
    denied_before = STORE_DENIED.labels("incr")._value.get()
    with caplog.at_level(logging.ERROR, logger="api.token_store"):
        wrong = client.post("/api/auth/login", json={"email": "nobody@example.com", "password": "x" * 12})
    body = assert_error(wrong, 500, "internal_error")
    assert "Retry-After" not in wrong.headers, body
    assert any("refused incr" in r.getMessage() and "'incrby'" in r.getMessage() for r in caplog.records)
    assert STORE_DENIED.labels("incr")._value.get() == denied_before + 1

    ready = client.get("/api/readyz")
    assert ready.status_code == 503
    assert ready.json["error"]["details"]["redis"]["status"] == "error"
    assert ready.json["error"]["details"]["database"]["status"] == "ok"
