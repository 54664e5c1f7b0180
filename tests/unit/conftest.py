"""The app on SQLite, schema from the migrations, with the memory and database state backends."""

from __future__ import annotations

import shutil

import pytest

from api import create_app
from api.cli import deploy_command
from api.extensions import db
from api.models import Role, User
from contract import Api

BACKENDS = ["memory", "database"]
# Strong, non-example values, so production mode starts.
STRONG_SECRETS = {
    "FLASK_SECRET_KEY": "k7Qx2vN9pL4mR8sT1wY6zB3cF5hJ0dGa",
    "JWT_SECRET_KEY": "Vb8nM2xZ5qW7eR1tY4uI9oP3aS6dF0gH",
}


def make_app(database_path, **overrides):
    settings = {"APP_ENV": "test", "DATABASE_URL": f"sqlite:///{database_path}", "BLACKLIST_STORAGE_TYPE": "memory"}
    settings.update({key: str(value) for key, value in overrides.items()})
    return create_app(settings)


@pytest.fixture(scope="session")
def migrated_database(tmp_path_factory):
    """One database migrated to head with the default roles; each test gets a copy."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    app = make_app(path)
    result = app.test_cli_runner().invoke(deploy_command)
    assert result.exit_code == 0, result.output
    return path


@pytest.fixture
def database_path(migrated_database, tmp_path):
    path = tmp_path / "app.sqlite"
    shutil.copy(migrated_database, path)
    return path


@pytest.fixture
def app_factory(database_path):
    """Build an app on this test's database; keyword arguments are config overrides."""

    def factory(**overrides):
        return make_app(database_path, **overrides)

    return factory


@pytest.fixture
def production_app(tmp_path):
    """Build a production-mode app on a SQLite file with the database token store."""

    def factory(**overrides):
        settings = {
            "APP_ENV": "production",
            **STRONG_SECRETS,
            "DATABASE_URL": f"sqlite:///{tmp_path}/p.sqlite",
            "BLACKLIST_STORAGE_TYPE": "database",
        }
        return create_app({**settings, **{key: str(value) for key, value in overrides.items()}})

    return factory


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def app(app_factory, backend):
    return app_factory(BLACKLIST_STORAGE_TYPE=backend)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def api(client):
    return Api(client)


@pytest.fixture
def admin_token(api, app):
    """An access token of a freshly made admin."""
    api.register("admin@example.com")
    with app.app_context():
        user = User.by_email("admin@example.com")
        user.role = db.session.scalar(db.select(Role).where(Role.name == "admin"))
        db.session.commit()
    return api.tokens("admin@example.com")["access_token"]


@pytest.fixture
def ledger(tmp_path):
    """The deployer tests' deploy ledger: its live commit is "1" * 40 (their LIVE)."""
    from hook.ledger import Ledger

    ledger = Ledger(str(tmp_path / "hook.sqlite"))
    ledger.create()
    ledger.set_live("1" * 40)
    return ledger
