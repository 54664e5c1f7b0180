"""Redis backend: one namespaced key per entry, expiry by Redis itself."""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, cast

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import Entry, StoreMisconfigured, StoreUnavailable, TokenStore


@contextmanager
def _unavailable_on_error() -> Iterator[None]:
    try:
        yield
    except redis.ResponseError as error:
        # The server answered, but its ACL forbids a command (compose/redis/app.acl): no retry helps.
        # A refused command in a transaction aborts it (EXECABORT, naming the command); a refused
        # MULTI leaves the EXEC that follows it alone ("EXEC without MULTI").
        if isinstance(error, redis.exceptions.NoPermissionError) or "NOPERM" in str(error):
            raise StoreMisconfigured(f"redis: {error}") from error
        if "EXEC without MULTI" in str(error):
            raise StoreMisconfigured(f"redis: {error}: the server refused the 'multi' command") from error
        raise StoreUnavailable(f"redis: {error}") from error
    except redis.RedisError as error:
        raise StoreUnavailable(f"redis: {error}") from error


def _ms(ttl: float) -> int:
    return max(1, math.ceil(ttl * 1000))


class RedisStore(TokenStore):
    kind = "redis"

    def __init__(self, client: redis.Redis, prefix: str):
        self.client = client
        self.prefix = prefix

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> RedisStore:
        timeout = config["REDIS_SOCKET_TIMEOUT"]
        client = redis.Redis.from_url(
            config["REDIS_URL"],
            decode_responses=True,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            # One immediate retry replaces a connection Redis dropped (a restart); a store that is
            # really down must answer 503 at once, not after redis-py's default backoff.
            retry=Retry(NoBackoff(), 1),
            health_check_interval=30,
            # No CLIENT SETINFO on connect: a command the app's ACL user has no need of
            # (compose/redis/app.acl lists exactly the store's commands).
            driver_info=None,
            # rediss:// verifies the server's certificate and name; REDIS_CA_FILE names its CA.
            **({"ssl_ca_certs": config["REDIS_CA_FILE"]} if config.get("REDIS_CA_FILE") else {}),
        )
        return cls(client, config["REDIS_KEY_PREFIX"])

    def _key(self, key: str) -> str:
        return self.prefix + key

    def get_many(self, keys: Sequence[str]) -> list[str | None]:
        with _unavailable_on_error():
            # decode_responses=True: str, never bytes (redis-py's types cannot say so)
            return cast(list[str | None], self.client.mget([self._key(k) for k in keys]))

    def set_many(self, entries: Sequence[Entry]) -> None:
        with _unavailable_on_error():
            pipe = self.client.pipeline(transaction=False)
            for key, value, ttl in entries:
                pipe.set(self._key(key), value, px=_ms(ttl) if ttl is not None else None)
            pipe.execute()

    def add(self, key: str, value: str, ttl: float) -> str | None:
        with _unavailable_on_error():
            # SET NX GET (Redis >= 7): sets when absent and returns what was there, in one command.
            return cast(str | None, self.client.set(self._key(key), value, nx=True, get=True, px=_ms(ttl)))

    def incr(self, key: str, ttl: float | None = None) -> int:
        with _unavailable_on_error():
            if ttl is None:
                return int(self.client.incr(self._key(key)))
            pipe = self.client.pipeline(transaction=True)
            pipe.incr(self._key(key))
            pipe.pexpire(self._key(key), _ms(ttl), nx=True)
            count, _ = pipe.execute()
            return int(count)

    def ttl(self, key: str) -> float | None:
        with _unavailable_on_error():
            remaining = self.client.pttl(self._key(key))
        return remaining / 1000 if remaining > 0 else None

    def delete(self, *keys: str) -> None:
        with _unavailable_on_error():
            self.client.delete(*(self._key(k) for k in keys))

    def ping(self) -> None:
        with _unavailable_on_error():
            self.client.ping()

    def describe(self) -> str:
        kwargs = self.client.connection_pool.connection_kwargs
        return f"redis://{kwargs.get('host')}:{kwargs.get('port')}/{kwargs.get('db', 0)}"
