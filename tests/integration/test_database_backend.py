"""BLACKLIST_STORAGE_TYPE=database on real Postgres and MariaDB: the store contract (with real
concurrent upserts) and the auth flow."""

from contextlib import contextmanager

import pytest

from api import create_app
from api.cli import deploy_command
from api.token_store.database_store import DatabaseStore
from contract import Api, assert_error
from fake_clock import FakeClock
from store_contract import StoreContract

# Every test here runs on each server (conftest's database_server).
pytestmark = pytest.mark.parametrize("database_server", ["postgres", "mariadb"])


@pytest.fixture
def database_app(settings):
    app = create_app({**settings, "BLACKLIST_STORAGE_TYPE": "database"})
    assert app.test_cli_runner().invoke(deploy_command).exit_code == 0
    yield app
    with app.app_context():
        from api.extensions import db

        db.engine.dispose()


class TestDatabaseStore(StoreContract):
    @pytest.fixture
    def clock(self):
        return FakeClock()

    @pytest.fixture
    def elapse(self, clock):
        return clock.elapse

    @pytest.fixture
    def store(self, database_app, clock):
        with database_app.app_context():
            yield DatabaseStore(clock=clock)

    @pytest.fixture
    def store_in_thread(self, database_app):
        @contextmanager
        def context():
            with database_app.app_context():
                yield

        return context


def test_auth_flow_with_the_database_as_the_store(database_app):
    api = Api(database_app.test_client())
    tokens = api.tokens()
    rotated = api.refresh(tokens["refresh_token"]).json
    assert_error(api.refresh(tokens["refresh_token"]), 401, "token_revoked")
    assert_error(api.me(rotated["access_token"]), 401, "token_revoked")
    fresh = api.tokens()
    api.logout_all(fresh["access_token"])
    assert_error(api.me(fresh["access_token"]), 401, "token_revoked")
    assert api.me(api.tokens()["access_token"]).status_code == 200
