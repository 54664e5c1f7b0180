"""Register, login, refresh rotation with reuse detection, logout, logout-all: on both backends."""

import pytest

from api.extensions import db
from api.models import User
from contract import PASSWORD, assert_error, json_of


def test_register_returns_the_user_without_secrets(api):
    response = api.register("New.User@Example.com")
    assert response.status_code == 201
    body = response.json
    assert set(body) == {"id", "email", "role", "active", "email_verified", "created_at"}
    assert body["active"] is True and body["email_verified"] is False
    assert body["email"] == "New.User@Example.com"
    assert body["role"] == "user"
    assert body["created_at"].endswith("+00:00")


def test_register_same_email_in_other_case_is_taken(api):
    assert api.register("taken@example.com").status_code == 201
    assert_error(api.register("TAKEN@example.COM"), 409, "email_taken")


def test_register_validates_each_field(api):
    error = assert_error(api.register("not-an-email", "short"), 422, "validation_error")
    assert set(error["details"]) == {"email", "password"}
    error = assert_error(api.register("ok@example.com", "x" * 1025), 422, "validation_error")
    assert set(error["details"]) == {"password"}
    assert api.register("ok@example.com", "x" * 12).status_code == 201


def test_register_rejects_unknown_fields_and_non_objects(api):
    response = api.post("/api/auth/register", json={"email": "a@example.com", "password": PASSWORD, "role": "admin"})
    assert "role" in assert_error(response, 422, "validation_error")["details"]
    assert_error(api.post("/api/auth/register", json=["a@example.com"]), 422, "validation_error")
    assert_error(api.post("/api/auth/register", json={}), 422, "validation_error")


def test_login_returns_a_bearer_pair(api, app):
    api.register()
    response = api.login()
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == app.config["JWT_ACCESS_TOKEN_EXPIRES"]
    assert body["access_token"] != body["refresh_token"]
    assert response.headers["Cache-Control"] == "no-store"


def test_login_answers_unknown_email_and_wrong_password_alike(api):
    api.register("known@example.com")
    unknown = api.login("nobody@example.com", PASSWORD)
    wrong = api.login("known@example.com", PASSWORD + "!")
    assert_error(unknown, 401, "invalid_credentials")
    assert_error(wrong, 401, "invalid_credentials")
    assert unknown.json == wrong.json
    assert unknown.headers["WWW-Authenticate"] == wrong.headers["WWW-Authenticate"]


def test_login_is_case_insensitive_on_email(api):
    api.register("Mixed@Example.com")
    assert api.login("mixed@example.COM").status_code == 200


def test_disabled_account_cannot_log_in_and_its_tokens_stop_working(api, app):
    tokens = api.tokens("off@example.com")
    with app.app_context():
        User.by_email("off@example.com").is_active = False
        db.session.commit()
    assert_error(api.login("off@example.com"), 401, "invalid_credentials")
    assert_error(api.me(tokens["access_token"]), 401, "token_invalid")


def test_me_returns_the_profile(api):
    tokens = api.tokens("me@example.com")
    response = api.me(tokens["access_token"])
    assert response.status_code == 200
    assert response.json["email"] == "me@example.com"
    assert set(response.json) == {"id", "email", "role", "active", "email_verified", "created_at"}


def test_refresh_rotates_the_pair(api):
    tokens = api.tokens()
    response = api.refresh(tokens["refresh_token"])
    assert response.status_code == 200
    rotated = response.json
    assert rotated["refresh_token"] != tokens["refresh_token"]
    assert rotated["access_token"] != tokens["access_token"]
    assert api.me(rotated["access_token"]).status_code == 200
    assert api.refresh(rotated["refresh_token"]).status_code == 200


def test_reusing_a_spent_refresh_token_revokes_the_whole_family(api):
    tokens = api.tokens()
    rotated = api.refresh(tokens["refresh_token"]).json
    assert_error(api.refresh(tokens["refresh_token"]), 401, "token_revoked")
    # The thief's and the owner's tokens of that family are all dead now.
    assert_error(api.refresh(rotated["refresh_token"]), 401, "token_revoked")
    assert_error(api.me(rotated["access_token"]), 401, "token_revoked")
    assert_error(api.me(tokens["access_token"]), 401, "token_revoked")


def test_reuse_in_one_family_leaves_other_sessions_alone(api):
    phone = api.tokens()
    laptop = api.tokens()
    api.refresh(phone["refresh_token"])
    api.refresh(phone["refresh_token"])
    assert api.me(laptop["access_token"]).status_code == 200
    assert api.refresh(laptop["refresh_token"]).status_code == 200


def test_grace_window_lets_a_concurrent_retry_rotate_again(app_factory, backend):
    from contract import Api

    api = Api(app_factory(BLACKLIST_STORAGE_TYPE=backend, JWT_REFRESH_REUSE_GRACE_SECONDS=30).test_client())
    tokens = api.tokens()
    first = api.refresh(tokens["refresh_token"])
    second = api.refresh(tokens["refresh_token"])
    assert first.status_code == second.status_code == 200
    assert api.me(first.json["access_token"]).status_code == 200
    assert api.me(second.json["access_token"]).status_code == 200


def test_grace_window_is_off_by_default(app):
    assert app.config["JWT_REFRESH_REUSE_GRACE_SECONDS"] == 0


def test_logout_revokes_the_access_token_and_its_refresh_token(api):
    tokens = api.tokens()
    other_session = api.tokens()
    response = api.logout(tokens["access_token"])
    assert response.status_code == 204
    assert response.get_data() == b""
    assert_error(api.me(tokens["access_token"]), 401, "token_revoked")
    assert_error(api.refresh(tokens["refresh_token"]), 401, "token_revoked")
    assert api.me(other_session["access_token"]).status_code == 200


def test_logout_also_revokes_tokens_rotated_from_that_session(api):
    tokens = api.tokens()
    rotated = api.refresh(tokens["refresh_token"]).json
    api.logout(tokens["access_token"])
    assert_error(api.refresh(rotated["refresh_token"]), 401, "token_revoked")


def test_logout_all_revokes_every_session_then_login_works_again(api):
    phone = api.tokens()
    laptop = api.tokens()
    other_user = api.tokens("other@example.com")
    assert api.logout_all(phone["access_token"]).status_code == 204
    for session in (phone, laptop):
        assert_error(api.me(session["access_token"]), 401, "token_revoked")
        assert_error(api.refresh(session["refresh_token"]), 401, "token_revoked")
    assert api.me(other_user["access_token"]).status_code == 200
    fresh = api.tokens()
    assert api.me(fresh["access_token"]).status_code == 200
    assert api.refresh(fresh["refresh_token"]).status_code == 200


def test_admin_lists_users_page_by_page(api, admin_token):
    for n in range(5):
        api.register(f"user{n}@example.com")
    response = api.users(admin_token, page=2, per_page=2)
    assert response.status_code == 200
    body = json_of(response)
    assert (body["page"], body["per_page"], body["total"], body["pages"]) == (2, 2, 6, 3)
    # Oldest first: the admin, then user0..user4; page 2 holds the third and fourth accounts.
    assert [u["email"] for u in body["items"]] == ["user1@example.com", "user2@example.com"]
    assert_error(api.users(admin_token, per_page=101), 422, "validation_error")
    assert_error(api.users(admin_token, page=0), 422, "validation_error")


def test_non_admin_may_not_list_users(api):
    tokens = api.tokens()
    assert_error(api.users(tokens["access_token"]), 403, "forbidden")


def test_a_role_change_shows_at_once_despite_the_profile_cache(api, app):
    """The profile is cached with the revocation state; a change committed through the app forgets it."""
    tokens = api.tokens("promoted@example.com")
    assert api.me(tokens["access_token"]).json["role"] == "user"  # cached now
    assert_error(api.users(tokens["access_token"]), 403, "forbidden")
    with app.app_context():
        from api.models import Role

        user = User.by_email("promoted@example.com")
        user.role = db.session.scalar(db.select(Role).where(Role.name == "admin"))
        db.session.commit()
    assert api.me(tokens["access_token"]).json["role"] == "admin"
    assert api.users(tokens["access_token"]).status_code == 200


def test_the_profile_comes_from_the_store_once_cached(api, app):
    tokens = api.tokens("cached@example.com")
    api.me(tokens["access_token"])
    with app.app_context():
        from api.token_store import current_token_store, keys

        (cached,) = current_token_store().get_many([keys.profile(User.by_email("cached@example.com").id)])
    assert '"email": "cached@example.com"' in cached


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("ab@example.com", "\uff21\uff22@example.com"),  # AB in full-width letters
        ("\u00c4nne@example.com", "\u00e4nne@example.com"),  # Ä and ä: SQLite's lower() folds ASCII only
        ("stra\u00dfe@example.com", "STRASSE@example.com"),  # ß case-folds to ss
        ("file@example.com", "\ufb01le@example.com"),  # the fi ligature is f, i under NFKC
    ],
    ids=["full-width", "non-ascii-case", "sharp-s", "ligature"],
)
def test_one_account_per_address_however_it_is_typed(api, first, second):
    assert api.register(first).status_code == 201
    assert_error(api.register(second), 409, "email_taken")
    assert api.login(second).status_code == 200


def test_the_address_is_shown_as_typed(api):
    assert api.register("  Mixed.Case@Example.com ").json["email"] == "Mixed.Case@Example.com"


def test_a_deleted_users_id_is_never_given_again_so_its_old_token_fails(api, app):
    """SQLite reuses the highest rowid unless the table says AUTOINCREMENT."""
    api.register("first@example.com")
    token = api.tokens("first@example.com")["access_token"]
    with app.app_context():
        gone = User.by_email("first@example.com")
        gone_id = gone.id
        db.session.delete(gone)
        db.session.commit()
    newcomer = api.register("second@example.com").json
    assert newcomer["id"] != gone_id
    assert_error(api.me(token), 401, "token_invalid")
