"""Admins and operators changing accounts: a disabled, demoted or deleted user's tokens stop working
on the very next request (their profile cached or not), giving rights applies at once without a
sign-out, and the last active admin stays."""

from __future__ import annotations

import pytest

from api.cli import users_group
from api.extensions import db
from api.models import Role, User
from contract import PASSWORD, assert_error, json_of


def user_id(app, email: str) -> int:
    with app.app_context():
        return User.by_email(email).id


def make_admin(app, email: str) -> None:
    with app.app_context():
        user = User.by_email(email)
        user.role = db.session.scalar(db.select(Role).where(Role.name == "admin"))
        db.session.commit()


@pytest.fixture
def signed_in(api, app):
    """A user signed in, their profile already cached by a first request."""
    tokens = api.tokens("someone@example.com")
    assert api.me(tokens["access_token"]).status_code == 200
    return tokens, user_id(app, "someone@example.com")


def test_a_disabled_user_is_refused_on_the_next_request_and_cannot_sign_in(api, admin_token, signed_in):
    tokens, someone = signed_in
    changed = api.update_user(admin_token, someone, active=False)
    assert changed.status_code == 200, json_of(changed)
    assert json_of(changed)["active"] is False and json_of(changed)["role"] == "user"
    assert_error(api.me(tokens["access_token"]), 401, "token_revoked")
    assert_error(api.refresh(tokens["refresh_token"]), 401, "token_revoked")
    assert_error(api.login("someone@example.com"), 401, "invalid_credentials")
    # Enabled again: signs in; the old tokens stay dead.
    assert api.update_user(admin_token, someone, active=True).status_code == 200
    assert api.login("someone@example.com").status_code == 200
    assert_error(api.me(tokens["access_token"]), 401, "token_revoked")


def test_a_demoted_admin_is_signed_out_and_comes_back_as_a_user(api, app, admin_token, signed_in):
    tokens, someone = signed_in
    make_admin(app, "someone@example.com")
    assert json_of(api.me(tokens["access_token"]))["role"] == "admin"  # given rights: at once, no sign-out
    assert api.users(tokens["access_token"]).status_code == 200
    demoted = api.update_user(admin_token, someone, role="user")
    assert demoted.status_code == 200 and json_of(demoted)["role"] == "user"
    assert_error(api.users(tokens["access_token"]), 401, "token_revoked")
    again = api.tokens("someone@example.com")["access_token"]
    assert_error(api.users(again), 403, "forbidden")


def test_a_promotion_applies_to_the_next_request_without_a_sign_out(api, admin_token, signed_in):
    tokens, someone = signed_in
    assert_error(api.users(tokens["access_token"]), 403, "forbidden")
    assert api.update_user(admin_token, someone, role="admin").status_code == 200
    assert api.users(tokens["access_token"]).status_code == 200


def test_a_deleted_user_is_refused_and_gone(api, admin_token, signed_in):
    tokens, someone = signed_in
    deleted = api.delete_user(admin_token, someone)
    assert deleted.status_code == 204 and deleted.data == b""
    assert_error(api.me(tokens["access_token"]), 401, "token_revoked")
    assert_error(api.login("someone@example.com"), 401, "invalid_credentials")
    assert_error(api.delete_user(admin_token, someone), 404, "not_found")
    assert_error(api.update_user(admin_token, someone, active=True), 404, "not_found")
    # The address is free again.
    assert api.register("someone@example.com").status_code == 201


def test_the_last_active_admin_cannot_be_removed(api, app, admin_token):
    admin = user_id(app, "admin@example.com")
    for attempt in (
        lambda: api.update_user(admin_token, admin, active=False),
        lambda: api.update_user(admin_token, admin, role="user"),
        lambda: api.delete_user(admin_token, admin),
    ):
        assert_error(attempt(), 409, "last_admin")
    assert api.me(admin_token).status_code == 200  # refused: nothing changed, still signed in
    # With a second admin, the first may step down (and is signed out).
    api.register("second@example.com")
    make_admin(app, "second@example.com")
    assert api.update_user(admin_token, admin, role="user").status_code == 200
    assert_error(api.me(admin_token), 401, "token_revoked")
    # A disabled admin does not count: the second is now the last.
    second_token = api.tokens("second@example.com")["access_token"]
    assert_error(api.update_user(second_token, user_id(app, "second@example.com"), active=False), 409, "last_admin")


def test_an_empty_change_changes_nothing(api, admin_token, signed_in):
    tokens, someone = signed_in
    unchanged = api.update_user(admin_token, someone)
    assert unchanged.status_code == 200 and json_of(unchanged)["active"] is True
    assert api.me(tokens["access_token"]).status_code == 200
    no_body = api.http.patch(f"/api/users/{someone}", headers={"Authorization": f"Bearer {admin_token}"})
    assert "body" in assert_error(no_body, 422, "validation_error")["details"]


def test_only_admins_change_accounts(api, admin_token, signed_in):
    tokens, someone = signed_in
    assert_error(api.update_user(tokens["access_token"], someone, role="admin"), 403, "forbidden")
    assert_error(api.delete_user(tokens["access_token"], someone), 403, "forbidden")
    assert_error(api.update_user("not-a-token", someone, active=False), 401, "token_invalid")
    assert api.me(tokens["access_token"]).status_code == 200


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"role": "superuser"}, "role"),
        ({"role": ""}, "role"),
        ({"active": "maybe"}, "active"),
        ({"active": 0}, "active"),
        ({"email": "new@example.com"}, "email"),
    ],
)
def test_a_change_that_is_not_one_is_a_422_naming_the_field(api, admin_token, signed_in, changes, field):
    _tokens, someone = signed_in
    error = assert_error(api.update_user(admin_token, someone, **changes), 422, "validation_error")
    assert field in error["details"], error


def test_operators_change_accounts_with_flask_users(api, app, admin_token, signed_in):
    tokens, _someone = signed_in
    runner = app.test_cli_runner()
    disabled = runner.invoke(users_group, ["update", "--email", "someone@example.com", "--disabled"])
    assert disabled.exit_code == 0 and "a disabled user" in disabled.output, disabled.output
    assert_error(api.me(tokens["access_token"]), 401, "token_revoked")
    promoted = runner.invoke(users_group, ["update", "--email", "someone@example.com", "--active", "--role", "admin"])
    assert promoted.exit_code == 0 and "an active admin" in promoted.output, promoted.output
    unknown = runner.invoke(users_group, ["update", "--email", "someone@example.com", "--role", "root"])
    assert unknown.exit_code != 0 and "One of: admin, user." in unknown.output
    nothing = runner.invoke(users_group, ["update", "--email", "someone@example.com"])
    assert nothing.exit_code != 0 and "give --role" in nothing.output
    assert runner.invoke(users_group, ["delete", "--email", "someone@example.com", "--yes"]).exit_code == 0
    last = runner.invoke(users_group, ["delete", "--email", "admin@example.com", "--yes"])
    assert last.exit_code != 0 and "last_admin" in last.output
    nobody = runner.invoke(users_group, ["delete", "--email", "nobody@example.com", "--yes"])
    assert nobody.exit_code != 0 and "No account for nobody@example.com" in nobody.output


NEW_PASSWORD = "a new long passphrase"


def change_password(api, access_token, current, new, **extra):
    return api.post(
        "/api/auth/password",
        json={"current_password": current, "new_password": new, **extra},
        headers={"Authorization": f"Bearer {access_token}"},
    )


def test_a_password_change_ends_every_session_and_answers_a_new_pair(api):
    elsewhere = api.tokens("someone@example.com")
    here = api.tokens("someone@example.com")
    changed = change_password(api, here["access_token"], PASSWORD, NEW_PASSWORD)
    assert changed.status_code == 200, json_of(changed)
    fresh = json_of(changed)
    for old in (elsewhere, here):
        assert_error(api.me(old["access_token"]), 401, "token_revoked")
        assert_error(api.refresh(old["refresh_token"]), 401, "token_revoked")
    assert api.me(fresh["access_token"]).status_code == 200
    assert api.refresh(fresh["refresh_token"]).status_code == 200
    assert_error(api.login("someone@example.com", PASSWORD), 401, "invalid_credentials")
    assert api.login("someone@example.com", NEW_PASSWORD).status_code == 200


def test_the_same_password_again_ends_the_sessions_without_a_second_hash(api, app):
    here = api.tokens("someone@example.com")

    def stored_hash() -> str:
        with app.app_context():
            return User.by_email("someone@example.com").password_hash

    before = stored_hash()
    changed = change_password(api, here["access_token"], PASSWORD, PASSWORD)
    assert changed.status_code == 200, json_of(changed)
    assert_error(api.me(here["access_token"]), 401, "token_revoked")
    assert stored_hash() == before  # a new hash would have a new salt: none was computed


def test_a_browser_gets_its_new_refresh_token_in_the_cookie(api):
    here = api.tokens("someone@example.com")
    changed = change_password(api, here["access_token"], PASSWORD, NEW_PASSWORD, refresh_cookie=True)
    assert changed.status_code == 200
    assert "refresh_token" not in json_of(changed)
    assert "refresh_token_cookie=" in changed.headers.get("Set-Cookie", "")


def test_wrong_guesses_of_the_current_password_are_throttled_apart_from_sign_in(api):
    here = api.tokens("someone@example.com")
    assert_error(change_password(api, here["access_token"], "not the password", NEW_PASSWORD), 403, "wrong_password")
    assert api.me(here["access_token"]).status_code == 200  # still signed in
    answers = [change_password(api, here["access_token"], "guess", NEW_PASSWORD) for _ in range(12)]
    assert_error(answers[-1], 429, "rate_limited")
    assert int(answers[-1].headers["Retry-After"]) > 0
    # A stolen token guessing the password does not lock the owner out of signing in.
    assert api.login("someone@example.com", PASSWORD).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"current_password": PASSWORD, "new_password": "short"}, "new_password"),
        ({"new_password": NEW_PASSWORD}, "current_password"),
        ({"current_password": PASSWORD}, "new_password"),
    ],
)
def test_a_password_change_that_is_not_one_is_a_422(api, body, field):
    here = api.tokens("someone@example.com")
    response = api.post("/api/auth/password", json=body, headers={"Authorization": f"Bearer {here['access_token']}"})
    assert field in assert_error(response, 422, "validation_error")["details"]


def test_with_the_token_store_down_an_account_change_fails_closed_and_changes_nothing(api, app, admin_token, signed_in):
    """Disabling must revoke the user's tokens first: if the store cannot be reached, the answer is
    503 and the account stays as it was, rather than a disabled user whose tokens still work."""
    from api.token_store import StoreUnavailable

    _tokens, someone = signed_in
    store = app.extensions["token_store"]

    def down(*_args, **_kwargs):
        raise StoreUnavailable("down")

    original = store.inner.incr
    store.inner.incr = down
    try:
        with app.test_request_context():
            from api.users.accounts import update_account

            user = db.session.get(User, someone)
            with pytest.raises(StoreUnavailable):
                update_account(user, active=False)
            db.session.rollback()
    finally:
        store.inner.incr = original
    with app.app_context():
        assert db.session.get(User, someone).is_active is True
