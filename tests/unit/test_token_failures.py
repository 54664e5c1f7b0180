"""Every way a token can be refused answers 401, the contract's code and a Bearer challenge."""

import base64
import json
import time
from datetime import timedelta

import jwt as pyjwt
import pytest
from flask_jwt_extended import create_access_token

from api.extensions import db
from api.models import User
from contract import assert_error, bearer


def forge(app, claims: dict, secret=None, algorithm="HS256") -> str:
    return pyjwt.encode(claims, secret or app.config["JWT_SECRET_KEY"], algorithm=algorithm)


def claims_of(token: str) -> dict:
    return pyjwt.decode(token, options={"verify_signature": False})


def test_missing_token(api):
    error = assert_error(api.get("/api/users/me"), 401, "unauthorized")
    assert "Authorization" in error["message"]


def test_missing_token_challenge_has_no_error_attribute(api):
    response = api.get("/api/users/me")
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'


def test_non_bearer_scheme_is_unauthorized(api):
    assert_error(api.get("/api/users/me", headers={"Authorization": "Basic dXNlcjpwYXNz"}), 401, "unauthorized")


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b.c", "Bearer", "ü.ü.ü", "x" * 5000])
def test_malformed_token(api, garbage):
    response = api.get("/api/users/me", headers=bearer(garbage))
    assert response.status_code == 401
    assert response.json["error"]["code"] in {"token_invalid", "unauthorized"}


def test_invalid_token_challenge_names_the_error(api):
    response = api.get("/api/users/me", headers=bearer("a.b.c"))
    assert_error(response, 401, "token_invalid")
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_tampered_payload(api, app):
    token = api.tokens()["access_token"]
    header, _payload, signature = token.split(".")
    claims = claims_of(token)
    claims["sub"] = "999"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    assert_error(api.me(f"{header}.{forged_payload}.{signature}"), 401, "token_invalid")


def test_token_signed_with_another_secret(api, app):
    claims = claims_of(api.tokens()["access_token"])
    assert_error(api.me(forge(app, claims, secret="another-secret-of-at-least-32-bytes!!")), 401, "token_invalid")


def test_unsigned_alg_none_token(api, app):
    claims = claims_of(api.tokens()["access_token"])
    token = pyjwt.encode(claims, key=None, algorithm="none")
    assert_error(api.me(token), 401, "token_invalid")


def test_refresh_token_where_an_access_token_belongs(api):
    assert_error(api.me(api.tokens()["refresh_token"]), 401, "token_invalid")


def test_access_token_where_a_refresh_token_belongs(api):
    assert_error(api.refresh(api.tokens()["access_token"]), 401, "token_invalid")


def access_token_expired_by(api, app, seconds: int) -> str:
    """A real access token of a real user, issued by the app, that expired ``seconds`` ago."""
    api.register()
    with app.app_context():
        user = User.by_email("user@example.com")
        return create_access_token(
            str(user.id), expires_delta=timedelta(seconds=-seconds), additional_claims={"fam": "f", "ver": 0}
        )


def test_expired_token(api, app):
    assert_error(api.me(access_token_expired_by(api, app, 60)), 401, "token_expired")


def test_expired_within_leeway_still_accepted(api, app):
    assert app.config["JWT_DECODE_LEEWAY"] >= 10
    assert api.me(access_token_expired_by(api, app, 5)).status_code == 200


def test_token_from_a_clock_far_ahead_is_not_yet_valid(api, app):
    claims = claims_of(api.tokens()["access_token"])
    ahead = int(time.time()) + 300
    claims.update(iat=ahead, nbf=ahead, exp=ahead + 900)
    assert_error(api.me(forge(app, claims)), 401, "token_invalid")


def test_token_from_a_clock_slightly_ahead_is_accepted(api, app):
    claims = claims_of(api.tokens()["access_token"])
    ahead = int(time.time()) + 5
    claims.update(iat=ahead, nbf=ahead, exp=ahead + 900)
    assert api.me(forge(app, claims)).status_code == 200


def test_token_of_a_deleted_user(api, app):
    token = api.tokens("gone@example.com")["access_token"]
    with app.app_context():
        db.session.delete(User.by_email("gone@example.com"))
        db.session.commit()
    assert_error(api.me(token), 401, "token_invalid")


def test_revoked_token(api):
    token = api.tokens()["access_token"]
    api.logout(token)
    error = assert_error(api.me(token), 401, "token_revoked")
    assert error["message"] == "Token has been revoked"
