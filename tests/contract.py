"""The API contract as tests see it: a small client for its endpoints and its one error shape.

Works over Flask's test client (unit, integration) and over ``requests`` through nginx (system).
"""

from __future__ import annotations

import re
import time
from urllib.parse import urlencode

PASSWORD = "correct horse battery staple"


def json_of(response):
    """Flask's test response has ``.json``, requests' has ``.json()``."""
    return response.json() if callable(response.json) else response.json


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


# What the edge adds to every response, errors included.
SECURITY_HEADERS = {
    "Strict-Transport-Security": re.compile(r"^max-age=63072000; includeSubDomains$"),
    "X-Content-Type-Options": re.compile(r"^nosniff$"),
    "X-Frame-Options": re.compile(r"^DENY$"),
    "Referrer-Policy": re.compile(r"^strict-origin-when-cross-origin$"),
    "Content-Security-Policy": re.compile(r"default-src 'self'.*frame-ancestors 'none'"),
}


def assert_security_headers(response) -> None:
    for name, pattern in SECURITY_HEADERS.items():
        assert pattern.search(response.headers.get(name, "")), (response.status_code, name, dict(response.headers))


def assert_error(response, status: int, code: str) -> dict:
    """The contract's one error shape, as JSON, with the right status and code."""
    text = response.text if hasattr(response, "text") else response.get_data(as_text=True)
    assert response.status_code == status, (response.status_code, text[:500])
    assert response.headers.get("Content-Type", "").startswith("application/json"), response.headers
    body = json_of(response)
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code, body
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    if status == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer"), response.headers
    return body["error"]


class Api:
    """The contract's endpoints, by name. ``http`` is a Flask test client or a requests.Session."""

    def __init__(self, http, base_url: str = ""):
        self.http = http
        self.base_url = base_url

    def url(self, path: str) -> str:
        return self.base_url + path

    def get(self, path, **kwargs):
        return self.http.get(self.url(path), **kwargs)

    def post(self, path, **kwargs):
        return self.http.post(self.url(path), **kwargs)

    def register(self, email="user@example.com", password=PASSWORD, **kwargs):
        return self.patiently(
            lambda: self.post("/api/auth/register", json={"email": email, "password": password}, **kwargs)
        )

    def login(self, email="user@example.com", password=PASSWORD, **kwargs):
        return self.post("/api/auth/login", json={"email": email, "password": password}, **kwargs)

    def tokens(self, email="user@example.com", password=PASSWORD) -> dict:
        """Register (when new) and log in; the token pair."""
        self.register(email, password)
        response = self.patiently(lambda: self.login(email, password))
        assert response.status_code == 200, json_of(response)
        return json_of(response)

    @staticmethod
    def patiently(send, patience: float = 30):
        """``send()``, again after the wait a 429 or a 503 asks for (Retry-After), for up to
        ``patience`` seconds: how a polite client meets the edge's per-address sign-in budget (2 a
        second, a burst of 5), which tests that set up accounts from one address would otherwise
        exhaust, and a dependency coming back (a stack just restarted). Tests of the budget or of
        the 503 itself send their requests raw."""
        waited = 0.0
        while True:
            response = send()
            asked_to_wait = response.status_code == 429 or (
                response.status_code == 503 and response.headers.get("Retry-After")
            )
            if not asked_to_wait or waited >= patience:
                return response
            delay = float(response.headers.get("Retry-After") or 1)
            time.sleep(delay)
            waited += delay

    def change_password(self, access_token, current_password, new_password):
        """Through the edge, a password change spends the sign-in budget (two hashes each)."""
        return self.patiently(
            lambda: self.post(
                "/api/auth/password",
                json={"current_password": current_password, "new_password": new_password},
                headers=bearer(access_token),
            )
        )

    def refresh(self, refresh_token):
        return self.post("/api/auth/refresh", headers=bearer(refresh_token))

    def me(self, access_token):
        return self.get("/api/users/me", headers=bearer(access_token))

    def users(self, access_token, **params):
        query = f"?{urlencode(params)}" if params else ""
        return self.get(f"/api/users{query}", headers=bearer(access_token))

    def update_user(self, access_token, user_id, **changes):
        return self.http.patch(self.url(f"/api/users/{user_id}"), json=changes, headers=bearer(access_token))

    def delete_user(self, access_token, user_id):
        return self.http.delete(self.url(f"/api/users/{user_id}"), headers=bearer(access_token))

    def logout(self, access_token):
        return self.post("/api/auth/logout", headers=bearer(access_token))

    def logout_all(self, access_token):
        return self.post("/api/auth/logout-all", headers=bearer(access_token))
