"""The memory and database (SQLite) token store backends against the shared store contract, on a
fake clock."""

from contextlib import contextmanager, nullcontext

import pytest

from api.token_store.database_store import DatabaseStore
from api.token_store.memory_store import MemoryStore
from fake_clock import FakeClock
from store_contract import StoreContract


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def elapse(clock):
    return clock.elapse


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self, clock):
        return MemoryStore(clock=clock)

    @pytest.fixture
    def store_in_thread(self):
        return nullcontext


class TestDatabaseStoreOnSqlite(StoreContract):
    @pytest.fixture
    def app(self, app_factory):
        return app_factory(BLACKLIST_STORAGE_TYPE="database")

    @pytest.fixture
    def store(self, app, clock):
        with app.app_context():
            yield DatabaseStore(clock=clock)

    @pytest.fixture
    def store_in_thread(self, app):
        @contextmanager
        def context():
            with app.app_context():
                yield

        return context

    def test_prune_removes_expired_rows(self, store, elapse):
        store.set_many([("gone", "x", 0.01), ("kept", "y", 60)])
        elapse(0.05)
        assert store.prune() == 1
        assert store.get_many(["kept"]) == ["y"]
