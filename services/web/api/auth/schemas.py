from collections.abc import Callable
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate

from .. import emails
from ..schemas import unicode_text

EMAIL_LENGTH = 254  # RFC 5321's longest path, and the users table's columns


def fits_once_normalized(email: str) -> None:
    """An address is stored NFKC-normalised, and compared case-folded too (api/emails.py); either
    may be longer than what was typed ("ß" folds to "ss")."""
    if max(len(emails.typed(email)), len(emails.normalized(email))) > EMAIL_LENGTH:
        raise ValidationError(f"Longer than {EMAIL_LENGTH} characters once normalised.")


Validators = list[Callable[[Any], Any]]
NEW_PASSWORD: Validators = [unicode_text, validate.Length(min=12, max=1024)]
ANY_PASSWORD: Validators = [unicode_text, validate.Length(min=1, max=1024)]
TOKEN: Validators = [unicode_text, validate.Length(min=1, max=1024)]
REFRESH_COOKIE = fields.Boolean(
    load_default=False,
    metadata={"description": "Browsers: keep the refresh token in an HttpOnly cookie instead of the body"},
)


class CredentialsSchema(Schema):
    """Unknown fields are an error (marshmallow's default), not silently dropped."""

    email = fields.Email(
        required=True, validate=[unicode_text, validate.Length(max=EMAIL_LENGTH), fits_once_normalized]
    )

    @pre_load
    def strip_email(self, data: Any, **_kwargs: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("email"), str):
            data = {**data, "email": data["email"].strip()}
        return data


class RegisterSchema(CredentialsSchema):
    password = fields.String(required=True, validate=NEW_PASSWORD, load_only=True)


class LoginSchema(CredentialsSchema):
    # No minimum: an old short password still gets the same invalid_credentials answer.
    password = fields.String(required=True, validate=ANY_PASSWORD, load_only=True)
    refresh_cookie = REFRESH_COOKIE


class PasswordChangeSchema(Schema):
    current_password = fields.String(required=True, validate=ANY_PASSWORD, load_only=True)
    new_password = fields.String(required=True, validate=NEW_PASSWORD, load_only=True)
    refresh_cookie = REFRESH_COOKIE


class TokenPairSchema(Schema):
    access_token = fields.String(required=True)
    refresh_token = fields.String(metadata={"description": "Absent when the refresh token is in the cookie"})
    token_type = fields.String(required=True, metadata={"example": "Bearer"})
    expires_in = fields.Integer(required=True, metadata={"description": "Access token lifetime, seconds"})
    refresh_expires_in = fields.Integer(metadata={"description": "Refresh token lifetime, seconds"})


class EmailSchema(CredentialsSchema):
    """Just the address: asking for a reset or a verification link."""


class PasswordResetSchema(Schema):
    token = fields.String(required=True, validate=TOKEN)
    new_password = fields.String(required=True, validate=NEW_PASSWORD, load_only=True)


class LinkTokenSchema(Schema):
    token = fields.String(required=True, validate=TOKEN)


class AcceptedSchema(Schema):
    message = fields.String(required=True)
