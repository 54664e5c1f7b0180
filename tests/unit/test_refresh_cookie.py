"""Browsers keep the refresh token in an HttpOnly cookie only /api/auth/refresh receives, guarded by
a double-submit CSRF token; the access token stays in the page's memory."""

from contract import PASSWORD, assert_error, bearer

HTTPS = "https://localhost"  # the cookies are Secure: the test client only returns them over https


def cookie_login(client, email="user@example.com"):
    client.post("/api/auth/register", json={"email": email, "password": PASSWORD}, base_url=HTTPS)
    return client.post(
        "/api/auth/login", json={"email": email, "password": PASSWORD, "refresh_cookie": True}, base_url=HTTPS
    )


def set_cookies(response) -> dict:
    cookies = {}
    for header in response.headers.getlist("Set-Cookie"):
        cookies[header.partition("=")[0]] = header
    return cookies


def csrf(client) -> str:
    return client.get_cookie("csrf_refresh_token", domain="localhost").value


def cookie_refresh(client, csrf_token=None):
    headers = {} if csrf_token is None else {"X-CSRF-TOKEN": csrf_token}
    return client.post("/api/auth/refresh", headers=headers, base_url=HTTPS)


def test_cookie_login_keeps_the_refresh_token_out_of_the_body(client):
    response = cookie_login(client)
    assert response.status_code == 200
    assert "refresh_token" not in response.json and response.json["access_token"]
    cookies = set_cookies(response)
    refresh = cookies["refresh_token_cookie"]
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/api/auth/refresh", "Max-Age=2592000"]:
        assert attribute in refresh, (attribute, refresh)
    readable = cookies["csrf_refresh_token"]
    assert "HttpOnly" not in readable and "Secure" in readable and "Path=/;" in readable + ";"


def test_refresh_from_the_cookie_rotates_it(client):
    cookie_login(client)
    before = client.get_cookie("refresh_token_cookie", domain="localhost", path="/api/auth/refresh").value
    response = cookie_refresh(client, csrf(client))
    assert response.status_code == 200
    assert "refresh_token" not in response.json
    after = client.get_cookie("refresh_token_cookie", domain="localhost", path="/api/auth/refresh").value
    assert after != before
    assert client.get("/api/users/me", headers=bearer(response.json["access_token"])).status_code == 200


def test_cookie_refresh_without_the_csrf_header_is_refused(client):
    cookie_login(client)
    assert_error(cookie_refresh(client), 403, "forbidden")
    assert_error(cookie_refresh(client, "not-the-token"), 403, "forbidden")
    # The refusal spent nothing: the genuine client still refreshes.
    assert cookie_refresh(client, csrf(client)).status_code == 200


def test_a_replayed_refresh_cookie_revokes_the_session(client):
    cookie_login(client)
    stolen = client.get_cookie("refresh_token_cookie", domain="localhost", path="/api/auth/refresh").value
    token = csrf(client)
    rotated = cookie_refresh(client, token).json
    client.set_cookie("refresh_token_cookie", stolen, domain="localhost", path="/api/auth/refresh", secure=True)
    assert_error(cookie_refresh(client, token), 401, "token_revoked")
    assert_error(client.get("/api/users/me", headers=bearer(rotated["access_token"])), 401, "token_revoked")


def test_logout_revokes_and_clears_the_cookies(client):
    access = cookie_login(client).json["access_token"]
    token = csrf(client)
    response = client.post("/api/auth/logout", headers=bearer(access), base_url=HTTPS)
    assert response.status_code == 204
    cleared = set_cookies(response)
    assert "Expires=Thu, 01 Jan 1970" in cleared["refresh_token_cookie"]
    assert client.get_cookie("refresh_token_cookie", domain="localhost", path="/api/auth/refresh") is None
    assert_error(client.post("/api/auth/refresh", headers={"X-CSRF-TOKEN": token}, base_url=HTTPS), 401, "unauthorized")


def test_an_access_token_in_a_cookie_is_not_accepted(client):
    access = cookie_login(client).json["access_token"]
    client.set_cookie("access_token_cookie", access, domain="localhost", secure=True)
    assert_error(client.get("/api/users/me", base_url=HTTPS), 401, "unauthorized")


def test_api_clients_still_get_both_tokens_in_the_body(client):
    client.post("/api/auth/register", json={"email": "api@example.com", "password": PASSWORD})
    response = client.post("/api/auth/login", json={"email": "api@example.com", "password": PASSWORD})
    assert response.json["refresh_token"] and "Set-Cookie" not in response.headers
