"""The memory and database (SQLite) token store backends against the shared store contract."""

import time
from contextlib import contextmanager, nullcontext

import pytest
from store_contract import StoreContract


@pytest.fixture
def memory_app(app_factory):
    return app_factory(BLACKLIST_STORAGE_TYPE="memory")


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def store(self, memory_app):
        return memory_app.extensions["token_store"]

    @pytest.fixture
    def store_in_thread(self):
        return nullcontext


class TestDatabaseStoreOnSqlite(StoreContract):
    @pytest.fixture
    def app(self, app_factory):
        return app_factory(BLACKLIST_STORAGE_TYPE="database")

    @pytest.fixture
    def store(self, app):
        with app.app_context():
            yield app.extensions["token_store"]

    @pytest.fixture
    def store_in_thread(self, app):
        @contextmanager
        def context():
            with app.app_context():
                yield

        return context

    def test_prune_removes_expired_rows(self, store):
        store.set_many([("gone", "x", 0.01), ("kept", "y", 60)])
        time.sleep(0.05)
        assert store.prune() == 1
        assert store.get_many(["kept"]) == ["y"]
