"""The Redis backend for real: key TTLs, persistence across a restart, and the store contract."""

import time
import uuid
from contextlib import nullcontext

import jwt as pyjwt
import pytest
import redis

from api.token_store.redis_store import RedisStore
from harness.polling import until
from store_contract import StoreContract


def claims_of(token):
    return pyjwt.decode(token, options={"verify_signature": False})


@pytest.fixture
def raw_client(redis_url):
    return redis.Redis.from_url(redis_url, decode_responses=True)


def test_full_flow_with_redis_as_the_store(api):
    tokens = api.tokens()
    assert api.me(tokens["access_token"]).status_code == 200
    rotated = api.refresh(tokens["refresh_token"]).json
    assert api.refresh(tokens["refresh_token"]).status_code == 401
    assert api.me(rotated["access_token"]).json["error"]["code"] == "token_revoked"
    fresh = api.tokens()
    assert api.logout(fresh["access_token"]).status_code == 204
    assert api.me(fresh["access_token"]).status_code == 401


def test_revoked_token_key_lives_exactly_as_long_as_the_token(api, app, raw_client, settings):
    tokens = api.tokens()
    access = claims_of(tokens["access_token"])
    api.logout(tokens["access_token"])
    client = raw_client
    prefix = settings["REDIS_KEY_PREFIX"]
    leeway = app.config["JWT_DECODE_LEEWAY"]
    ttl = client.pttl(f"{prefix}revoked:{access['jti']}") / 1000
    expected = access["exp"] + leeway - time.time()
    assert abs(ttl - expected) < 2, (ttl, expected)
    family_ttl = client.pttl(f"{prefix}family:{access['fam']}") / 1000
    assert abs(family_ttl - (app.config["JWT_REFRESH_TOKEN_EXPIRES"] + leeway)) < 2


def test_spent_refresh_marker_lives_as_long_as_that_refresh_token(api, app, raw_client, settings):
    tokens = api.tokens()
    refresh = claims_of(tokens["refresh_token"])
    api.refresh(tokens["refresh_token"])
    ttl = raw_client.pttl(f"{settings['REDIS_KEY_PREFIX']}spent:{refresh['jti']}") / 1000
    expected = refresh["exp"] + app.config["JWT_DECODE_LEEWAY"] - time.time()
    assert abs(ttl - expected) < 2, (ttl, expected)


def test_keys_are_namespaced(api, raw_client, settings):
    api.logout(api.tokens()["access_token"])
    keys = raw_client.keys(f"{settings['REDIS_KEY_PREFIX']}*")
    assert keys and all(key.startswith(settings["REDIS_KEY_PREFIX"]) for key in keys)


def test_revocations_survive_a_redis_restart(api, redis_server):
    tokens = api.tokens()
    api.logout(tokens["access_token"])
    redis_server.get_wrapped_container().restart(timeout=10)
    response = until(lambda: (r := api.me(tokens["access_token"])).status_code != 503 and r, timeout=30)
    assert response.json["error"]["code"] == "token_revoked"
    assert api.refresh(tokens["refresh_token"]).json["error"]["code"] == "token_revoked"


class TestRedisStore(StoreContract):
    @pytest.fixture
    def elapse(self):
        return time.sleep  # Redis expires keys by its own clock

    @pytest.fixture
    def store(self, redis_url):
        return RedisStore.from_config(
            {
                "REDIS_URL": redis_url,
                "REDIS_SOCKET_TIMEOUT": 1.0,
                "REDIS_KEY_PREFIX": f"contract-{uuid.uuid4().hex[:8]}:",
            }
        )

    @pytest.fixture
    def store_in_thread(self):
        return nullcontext
