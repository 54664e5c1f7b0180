"""flask deploy (idempotent), flask create-admin (no password on argv), flask prune-tokens."""

import time

from api.cli import create_admin_command, deploy_command, prune_tokens_command
from api.extensions import db
from api.models import Role, TokenStoreEntry, User
from contract import PASSWORD, Api
from fake_clock import FakeClock
from harness.ports import free_port


def run(app, command, *args, env=None):
    result = app.test_cli_runner().invoke(command, args, env=env or {})
    return result


def test_deploy_from_empty_then_again_changes_nothing(app_factory, tmp_path):
    app = app_factory(DATABASE_URL=f"sqlite:///{tmp_path}/fresh.sqlite")
    first = run(app, deploy_command)
    assert first.exit_code == 0, first.output
    assert "roles updated: user, admin" in first.output
    second = run(app, deploy_command)
    assert second.exit_code == 0, second.output
    assert "roles unchanged" in second.output
    with app.app_context():
        assert sorted(r.name for r in db.session.scalars(db.select(Role))) == ["admin", "user"]


def test_deploy_repairs_a_changed_role(app):
    with app.app_context():
        db.session.scalar(db.select(Role).where(Role.name == "admin")).permissions = 0
        db.session.commit()
    assert "roles updated: admin" in run(app, deploy_command).output


def test_create_admin_takes_the_password_from_the_environment(app):
    result = run(app, create_admin_command, "--email", "boss@example.com", env={"ADMIN_PASSWORD": PASSWORD})
    assert result.exit_code == 0, result.output
    api = Api(app.test_client())
    token = api.tokens("boss@example.com")["access_token"]
    assert api.users(token).status_code == 200


def test_create_admin_prompts_when_no_environment_password(app):
    result = app.test_cli_runner().invoke(
        create_admin_command, ["--email", "prompted@example.com"], input=f"{PASSWORD}\n{PASSWORD}\n"
    )
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output
    assert Api(app.test_client()).login("prompted@example.com").status_code == 200


def test_create_admin_has_no_password_option(app):
    result = run(app, create_admin_command, "--email", "x@example.com", "--password", PASSWORD)
    assert result.exit_code != 0
    assert "No such option" in result.output


def test_create_admin_promotes_an_existing_user(app):
    api = Api(app.test_client())
    api.register("promote@example.com")
    result = run(app, create_admin_command, "--email", "promote@example.com")
    assert "is now an admin" in result.output
    assert api.users(api.tokens("promote@example.com")["access_token"]).status_code == 200


def test_create_admin_refuses_a_weak_password(app):
    result = run(app, create_admin_command, "--email", "weak@example.com", env={"ADMIN_PASSWORD": "short"})
    assert result.exit_code != 0
    with app.app_context():
        assert User.by_email("weak@example.com") is None


def test_prune_removes_only_expired_rows(app_factory):
    app = app_factory(BLACKLIST_STORAGE_TYPE="database")
    now = time.time()
    with app.app_context():
        db.session.add_all(
            [
                TokenStoreEntry(key="revoked:old", value="x", expires_at=now - 10),
                TokenStoreEntry(key="revoked:live", value="x", expires_at=now + 600),
                TokenStoreEntry(key="user-version:1", value="3", expires_at=None),
            ]
        )
        db.session.commit()
    result = run(app, prune_tokens_command)
    assert "removed 1 expired entries from the database store" in result.output
    with app.app_context():
        assert sorted(db.session.scalars(db.select(TokenStoreEntry.key))) == ["revoked:live", "user-version:1"]


def test_deploy_waits_for_a_database_that_does_not_answer_yet_then_says_so(app_factory, monkeypatch):
    """A migration started beside its database waits for it (a clock of our own: no real wait)."""
    import api.cli

    clock = FakeClock(0.0)
    monkeypatch.setattr(api.cli.time, "monotonic", clock)
    monkeypatch.setattr(api.cli.time, "sleep", clock.elapse)
    app = app_factory(DATABASE_URL=f"postgresql+psycopg2://app:pw@127.0.0.1:{free_port()}/app", DB_CONNECT_TIMEOUT=1)
    result = run(app, deploy_command)
    assert result.exit_code != 0
    assert f"the database did not answer within {api.cli.DATABASE_WAIT_SECONDS:.0f}s" in result.output
    assert clock() >= api.cli.DATABASE_WAIT_SECONDS  # it asked again and again meanwhile
