"""Issuing access/refresh pairs. Every token names its family (``fam``) and user version (``ver``)."""

from __future__ import annotations

import uuid
from typing import Any

from flask import Response, current_app, jsonify
from flask_jwt_extended import create_access_token, create_refresh_token, set_refresh_cookies, unset_refresh_cookies


def new_family() -> str:
    return uuid.uuid4().hex


def issue_token_pair(user_id: int | str, family: str, version: int) -> dict[str, Any]:
    claims = {"fam": family, "ver": version}
    identity = str(user_id)
    return {
        "access_token": create_access_token(identity=identity, additional_claims=claims),
        "refresh_token": create_refresh_token(identity=identity, additional_claims=claims),
        "token_type": "Bearer",
        "expires_in": current_app.config["JWT_ACCESS_TOKEN_EXPIRES"],
        "refresh_expires_in": current_app.config["JWT_REFRESH_TOKEN_EXPIRES"],
    }


def token_response(pair: dict[str, Any], in_cookie: bool) -> Response | dict[str, Any]:
    """The pair as JSON; for a browser the refresh token goes into its HttpOnly cookie instead."""
    if not in_cookie:
        return pair
    body = {key: value for key, value in pair.items() if key != "refresh_token"}
    response = jsonify(body)
    set_refresh_cookies(response, pair["refresh_token"], max_age=pair["refresh_expires_in"])
    return response


def without_refresh_cookie(response: Response) -> Response:
    unset_refresh_cookies(response)
    return response
