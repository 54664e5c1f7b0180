"""Tokens for the fuzzer: schemathesis loads this module through SCHEMATHESIS_HOOKS.

Most operations get one admin access token (cached). Logout and logout-all revoke the token they
are given, and a refresh spends its refresh token, so each of their cases signs in afresh. The
fuzzer may change and delete any account but the admin's (disabling, demoting or deleting it would
end the run, not test the API).
"""

from __future__ import annotations

import functools
import os

import requests
import schemathesis

from contract import Api

BASE_URL = os.environ["FUZZ_BASE_URL"]
CA_FILE = os.environ.get("FUZZ_CA_FILE") or True
CREDENTIALS = {"email": os.environ["FUZZ_ADMIN_EMAIL"], "password": os.environ["FUZZ_ADMIN_PASSWORD"]}
SPENDS_ITS_TOKEN = "^/api/auth/(logout|logout-all|refresh)$"


def session() -> requests.Session:
    http = requests.Session()
    http.trust_env = False  # REQUESTS_CA_BUNDLE would override the CA given here
    http.verify = CA_FILE
    return http


def sign_in() -> dict:
    # Patient with the edge's sign-in budget, as a polite client is: the fuzzer signs in far more
    # often than a person does, and its pace and nginx's bucket do not always line up.
    http = session()
    response = Api.patiently(lambda: http.post(f"{BASE_URL}/api/auth/login", json=CREDENTIALS, timeout=30))
    response.raise_for_status()
    return response.json()


@functools.cache
def admin_id() -> str:
    token = sign_in()["access_token"]
    me = session().get(f"{BASE_URL}/api/users/me", headers={"Authorization": f"Bearer {token}"}, timeout=30)
    me.raise_for_status()
    return str(me.json()["id"])


@schemathesis.hook
def filter_path_parameters(context, path_parameters) -> bool:
    if not isinstance(path_parameters, dict):  # a negative case: not the admin's id, whatever it is
        return True
    return str(path_parameters.get("user_id")) != admin_id()


class BearerToken:
    kind = "access_token"

    def get(self, case, context):
        return sign_in()[self.kind]

    def set(self, case, data, context):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


@schemathesis.auth().skip_for(path_regex=SPENDS_ITS_TOKEN)
class AdminAccessToken(BearerToken):
    pass


@schemathesis.auth(refresh_interval=None).apply_to(path_regex="^/api/auth/(logout|logout-all)$")
class FreshAccessToken(BearerToken):
    pass


@schemathesis.auth(refresh_interval=None).apply_to(path="/api/auth/refresh")
class FreshRefreshToken(BearerToken):
    kind = "refresh_token"
