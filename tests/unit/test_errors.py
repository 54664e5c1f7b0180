"""Bad input gets the contract's JSON error with the right status: never a 500, never HTML."""

import pytest

from contract import PASSWORD, assert_error


def post_raw(client, path, data, content_type):
    return client.post(path, data=data, content_type=content_type)


@pytest.mark.parametrize(
    "body",
    [b"{bad", b'{"email": "a@example.com",}', b"\xff\xfe\xfa", b"[" * 100_000 + b"]" * 100_000, b"nul\x00l"],
    ids=["syntax", "trailing-comma", "bad-utf8", "deep-nesting", "nul-byte"],
)
def test_unparsable_json_is_400(client, body):
    assert_error(post_raw(client, "/api/auth/register", body, "application/json"), 400, "invalid_json")


@pytest.mark.parametrize(
    "content_type", ["application/x-www-form-urlencoded", "text/plain", "multipart/form-data; boundary=x"]
)
def test_non_json_body_is_415(client, content_type):
    assert_error(
        post_raw(client, "/api/auth/login", b"email=a&password=b", content_type), 415, "unsupported_media_type"
    )


def test_json_with_charset_parameter_is_accepted(client):
    body = b'{"email": "cs@example.com", "password": "%s"}' % PASSWORD.encode()
    assert post_raw(client, "/api/auth/register", body, "application/json; charset=utf-8").status_code == 201


def test_missing_body_is_422(client):
    error = assert_error(client.post("/api/auth/register"), 422, "validation_error")
    assert set(error["details"]) == {"email", "password"}


def test_oversized_body_is_413_json(app_factory):
    client = app_factory(MAX_CONTENT_LENGTH=1024).test_client()
    body = b'{"email": "%s"}' % (b"a" * 2000)
    assert_error(post_raw(client, "/api/auth/register", body, "application/json"), 413, "payload_too_large")


def test_default_body_limit_is_one_mebibyte(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024


def test_unknown_api_path_is_404_json(client):
    assert_error(client.get("/api/nope"), 404, "not_found")
    assert_error(client.post("/api/auth/nope", json={}), 404, "not_found")


def test_wrong_method_is_405_json_with_allow(client):
    response = client.delete("/api/auth/login")
    assert_error(response, 405, "method_not_allowed")
    assert "POST" in response.headers["Allow"]


def test_wrong_type_in_fields_is_422_not_500(client):
    response = client.post("/api/auth/register", json={"email": 12, "password": ["x"]})
    assert set(assert_error(response, 422, "validation_error")["details"]) == {"email", "password"}


def test_huge_page_number_is_422_not_an_overflow(api, admin_token):
    assert_error(api.users(admin_token, page=10**30), 422, "validation_error")
    assert api.users(admin_token, page=1_000_000).json["items"] == []


def test_unexpected_exception_is_500_json_without_a_traceback(app):
    @app.get("/api/test-explodes")
    def explodes():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/api/test-explodes")
    error = assert_error(response, 500, "internal_error")
    assert "secret internals" not in response.get_data(as_text=True)
    assert "Traceback" not in response.get_data(as_text=True)
    assert error["message"] == "Internal server error"


def test_database_down_is_503_json(app_factory, tmp_path):
    app = app_factory(DATABASE_URL=f"sqlite:///{tmp_path}/missing-dir/db.sqlite", BLACKLIST_STORAGE_TYPE="database")
    client = app.test_client()
    assert_error(
        client.post("/api/auth/register", json={"email": "a@example.com", "password": PASSWORD}),
        503,
        "service_unavailable",
    )
    assert_error(client.get("/api/readyz"), 503, "service_unavailable")


def test_token_store_down_fails_closed(app_factory, tmp_path, database_path):
    """A database-backed store that cannot be reached must refuse, not wave tokens through."""
    from contract import Api

    good = Api(app_factory(BLACKLIST_STORAGE_TYPE="database").test_client())
    token = good.tokens()["access_token"]
    # Same secret and user, but the store's database is gone: the token cannot be checked.
    broken = app_factory(BLACKLIST_STORAGE_TYPE="database", DATABASE_URL=f"sqlite:///{tmp_path}/nowhere/x.sqlite")
    response = Api(broken.test_client()).me(token)
    error = assert_error(response, 503, "service_unavailable")
    assert "token store" in error["message"]
    assert response.headers["Retry-After"]


def test_errors_outside_the_api_are_json_too(client):
    assert_error(client.get("/no-spa-configured"), 404, "not_found")


@pytest.mark.parametrize(
    ("query", "repeated"),
    [
        ("page=1&page=2", {"page"}),
        ("per_page=5&per_page=5", {"per_page"}),
        ("page=1&per_page=2&per_page=3", {"per_page"}),
        ("page=1&page=1&per_page=2&per_page=3", {"page", "per_page"}),
    ],
)
def test_a_repeated_scalar_query_parameter_is_422(api, admin_token, query, repeated):
    response = api.get(f"/api/users?{query}", headers={"Authorization": f"Bearer {admin_token}"})
    assert set(assert_error(response, 422, "validation_error")["details"]) == repeated


@pytest.mark.parametrize("query", ["page=abc", "per_page=1.5", "page=0", "per_page=101"])
def test_a_query_parameter_of_the_wrong_type_or_range_is_422(api, admin_token, query):
    response = api.get(f"/api/users?{query}", headers={"Authorization": f"Bearer {admin_token}"})
    assert set(assert_error(response, 422, "validation_error")["details"]) == {query.split("=")[0]}


def test_options_and_allow_list_exactly_the_routes_methods_with_the_spa_served(app_factory):
    """`make dev` serves the SPA from Flask; its catch-all route must not lend GET to API routes."""
    from harness.paths import REPO_ROOT

    client = app_factory(FLASK_STATIC_DIR=str(REPO_ROOT / "services/nginx/spa")).test_client()
    for path, methods in [
        ("/api/auth/login", {"POST", "OPTIONS"}),
        ("/api/users/me", {"GET", "HEAD", "OPTIONS"}),
        ("/login", {"GET", "HEAD", "OPTIONS"}),
    ]:
        allowed = client.options(path).headers["Allow"]
        assert set(allowed.split(", ")) == methods, (path, allowed)
    response = client.get("/api/auth/login")
    assert_error(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) == {"POST", "OPTIONS"}
    assert_error(client.get("/api/nope"), 404, "not_found")


def test_a_body_the_server_cannot_read_is_400_not_500(client):
    class CutShort:
        """What a WSGI server's input does when the client's chunked encoding is malformed."""

        def read(self, *_args):
            raise ValueError("Invalid chunk size")

    response = client.post(
        "/api/auth/login",
        headers={"Content-Type": "application/json", "Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input": CutShort(), "wsgi.input_terminated": True},
    )
    assert_error(response, 400, "bad_request")


def test_every_layer_uses_the_same_code_for_a_status():
    """The app, gunicorn (serving/protocol_errors.py) and nginx (its JSON error pages) agree."""
    import json

    from api.errors import CODE_FOR_STATUS
    from harness.paths import REPO_ROOT
    from serving.protocol_errors import CODE_FOR_STATUS as GUNICORN_CODES

    for status, code in GUNICORN_CODES.items():
        assert CODE_FOR_STATUS[status] == code, status
    pages = sorted((REPO_ROOT / "services/nginx/errors").glob("*.json"))
    assert len(pages) >= 14
    for page in pages:
        assert json.loads(page.read_text())["error"]["code"] == CODE_FOR_STATUS[int(page.stem)], page.name


def test_the_app_keeps_no_cookie_session(app_factory):
    """Tokens are the state: a request gets a null session, which refuses to be written, and no
    Set-Cookie for a session ever leaves."""
    from flask import session

    app = app_factory()

    @app.get("/api/session-write")
    def write():
        session["x"] = 1
        return {}

    response = app.test_client().get("/api/session-write")
    assert response.status_code == 500
    assert "Set-Cookie" not in response.headers


def test_a_hook_that_cannot_be_remembered_still_runs(app_factory):
    """Hooks are asked once whether they are coroutines and the answer kept by the hook; one that
    cannot be a dictionary key (an object with __eq__ and no __hash__) is simply asked each time."""
    app = app_factory()
    calls: list[str] = []

    class Unhashable:
        __hash__ = None  # type: ignore[assignment]

        def __eq__(self, other: object) -> bool:
            return self is other

        def __call__(self) -> None:
            calls.append("before")

    app.before_request(Unhashable())
    client = app.test_client()
    assert client.get("/api/healthz").status_code == 200
    assert client.get("/api/healthz").status_code == 200
    assert calls == ["before", "before"]
