"""The schema comes only from the migrations: empty -> head -> base -> head, on real Postgres and
MariaDB."""

import subprocess
import sys

import pytest
import sqlalchemy
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from flask_migrate import downgrade, upgrade
from sqlalchemy.exc import IntegrityError

from api import create_app
from api.cli import deploy_command
from api.extensions import db
from fake_clock import FakeClock
from harness.paths import WEB_DIR

# Every test here runs on each server (conftest's database_server).
pytestmark = pytest.mark.parametrize("database_server", ["postgres", "mariadb"])


def tables(url):
    engine = sqlalchemy.create_engine(url)
    try:
        return set(sqlalchemy.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_upgrade_downgrade_upgrade(empty_database, settings):
    app = create_app(settings)
    with app.app_context():
        upgrade()
        assert tables(empty_database) == {"alembic_version", "roles", "users", "auth_state"}
        downgrade(revision="base")
        assert tables(empty_database) == {"alembic_version"}
        upgrade()
        assert tables(empty_database) == {"alembic_version", "roles", "users", "auth_state"}
        db.engine.dispose()


def test_models_match_the_migrated_schema(empty_database, settings):
    app = create_app(settings)
    with app.app_context():
        upgrade()
        with db.engine.connect() as connection:
            differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
        db.engine.dispose()
    assert differences == []


def test_email_uniqueness_holds_in_the_database_itself(app):
    with app.app_context():
        role_id = db.session.execute(sqlalchemy.text("SELECT id FROM roles WHERE name = 'user'")).scalar_one()
        insert = sqlalchemy.text(
            "INSERT INTO users (email, email_normalized, password_hash, role_id) VALUES (:email, :key, 'x', :role_id)"
        )
        db.session.execute(insert, {"email": "Case@Example.com", "key": "case@example.com", "role_id": role_id})
        db.session.commit()
        try:
            db.session.execute(insert, {"email": "CASE@example.com", "key": "case@example.com", "role_id": role_id})
            db.session.commit()
            raise AssertionError("a second account with the same normalised address was stored")
        except IntegrityError:
            db.session.rollback()


def existing_users(settings, emails):
    """A database at revision 0001 (the layout before normalised addresses) with these users."""
    app = create_app(settings)
    with app.app_context():
        upgrade(revision="0001")
        with db.engine.begin() as connection:
            connection.execute(
                sqlalchemy.text("INSERT INTO roles (name, permissions, is_default) VALUES ('user', 1, true)")
            )
            for email in emails:
                connection.execute(
                    sqlalchemy.text("INSERT INTO users (email, password_hash, role_id) VALUES (:email, 'x', 1)"),
                    {"email": email},
                )
    return app


def test_the_upgrade_normalises_the_addresses_already_stored(settings):
    app = existing_users(settings, ["Ann@Example.com", "\uff22ob@example.com"])
    with app.app_context():
        upgrade()
        rows = db.session.execute(sqlalchemy.text("SELECT email, email_normalized FROM users ORDER BY id")).all()
        db.engine.dispose()
    assert [tuple(row) for row in rows] == [
        ("Ann@Example.com", "ann@example.com"),
        ("Bob@example.com", "bob@example.com"),
    ]


def test_the_upgrade_stops_and_names_accounts_that_would_become_one(settings, capsys):
    app = existing_users(settings, ["bob@example.com", "\uff42ob@example.com"])  # b, and a full-width b
    with app.app_context():
        with pytest.raises(SystemExit):  # flask-migrate logs the error and exits 1, as `flask deploy` does
            upgrade()
        db.engine.dispose()
    assert "users 1 and 2 are both 'bob@example.com'" in capsys.readouterr().err


def test_concurrent_deploys_take_turns(empty_database, settings):
    """Two `flask deploy` processes on one empty database: both succeed, the schema is whole."""
    env = {**settings, "PATH": "/usr/bin:/bin", "FLASK_APP": "api"}
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "flask", "deploy"],
            cwd=WEB_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [process.communicate(timeout=120)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert sum("roles updated: user, admin" in output for output in outputs) == 1, outputs
    assert sum("roles unchanged" in output for output in outputs) == 1, outputs


def test_deploy_stops_at_once_when_the_database_refuses_the_credentials(empty_database, settings, monkeypatch):
    """A wrong password (a database volume made with other secrets) is not a database starting up:
    no wait helps, so `flask deploy` says so at once instead of asking again for its whole wait."""
    import api.cli

    clock = FakeClock(0.0)
    monkeypatch.setattr(api.cli.time, "monotonic", clock)
    monkeypatch.setattr(api.cli.time, "sleep", clock.elapse)
    url = sqlalchemy.engine.make_url(empty_database).set(password="not-the-password-0123456789")
    app = create_app({**settings, "DATABASE_URL": url.render_as_string(hide_password=False)})
    result = app.test_cli_runner().invoke(deploy_command)
    assert result.exit_code != 0
    assert "the database refused the app's credentials" in result.output, result.output
    assert clock() == 0.0, "it waited for an answer that could not change"
