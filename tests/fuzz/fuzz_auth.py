"""Tokens for the fuzzer: schemathesis loads this module through SCHEMATHESIS_HOOKS.

Most operations get one admin access token (cached). Logout and logout-all revoke the token they
are given, and a refresh spends its refresh token, so each of their cases signs in afresh.
"""

from __future__ import annotations

import os

import requests
import schemathesis

BASE_URL = os.environ["FUZZ_BASE_URL"]
CA_FILE = os.environ.get("FUZZ_CA_FILE") or True
CREDENTIALS = {"email": os.environ["FUZZ_ADMIN_EMAIL"], "password": os.environ["FUZZ_ADMIN_PASSWORD"]}
SPENDS_ITS_TOKEN = "^/api/auth/(logout|logout-all|refresh)$"


def sign_in() -> dict:
    session = requests.Session()
    session.trust_env = False  # REQUESTS_CA_BUNDLE would override the CA given here
    response = session.post(f"{BASE_URL}/api/auth/login", json=CREDENTIALS, verify=CA_FILE, timeout=30)
    response.raise_for_status()
    return response.json()


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
