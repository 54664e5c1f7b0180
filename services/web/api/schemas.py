"""Schemas shared by several blueprints: users and the error shape."""

from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError, fields, pre_load, validate
from werkzeug.datastructures import MultiDict


def unicode_text(value: str) -> None:
    """Text every UTF-8 encoder takes (the database's, the password hasher's): JSON may carry a lone
    surrogate ("\\ud800"), which is no character at all."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("Not valid text: it holds a lone surrogate (\\ud800 to \\udfff).") from None


class ErrorBodySchema(Schema):
    code = fields.String(required=True, metadata={"example": "token_revoked"})
    message = fields.String(required=True, metadata={"example": "Token has been revoked"})
    details = fields.Dict(metadata={"description": "Per-field messages for validation errors"})


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class UtcDateTime(fields.DateTime):
    """SQLite hands back naive datetimes; every timestamp we store is UTC."""

    def _serialize(self, value: datetime | None, attr: str | None, obj: Any, **kwargs: Any) -> str | float | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return super()._serialize(value, attr, obj, **kwargs)


class StrictBoolean(fields.Boolean):
    """true or false and nothing else: marshmallow's Boolean also takes 0, 1, "yes", "off"..., and a
    JSON client that sent 0 meant something we should not guess."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class UserSchema(Schema):
    id = fields.Integer(dump_only=True)
    email = fields.Email(dump_only=True)
    role = fields.Function(lambda user: user.role_name, dump_only=True, metadata={"example": "user"})
    active = fields.Boolean(attribute="is_active", dump_only=True)
    email_verified = fields.Boolean(dump_only=True)
    created_at = UtcDateTime(dump_only=True)


class QueryArgsSchema(Schema):
    """Query parameters, each given at most once unless its field is a list: ``?page=1&page=2`` is
    ambiguous, and webargs would quietly take the first."""

    @pre_load
    def each_scalar_once(self, data: Any, **_kwargs: Any) -> Any:
        raw = getattr(data, "data", None)  # webargs hands the schema a proxy of the request's MultiDict
        if isinstance(raw, MultiDict):
            lists: set[str] = getattr(data, "multiple_keys", set())
            repeated = sorted(key for key in raw if key not in lists and len(raw.getlist(key)) > 1)
            if repeated:
                raise ValidationError({key: ["Give this parameter once."] for key in repeated})
        return data


class PageArgsSchema(QueryArgsSchema):
    # Bounded so OFFSET stays a 64-bit integer on every database.
    page = fields.Integer(load_default=1, validate=validate.Range(min=1, max=1_000_000))
    per_page = fields.Integer(load_default=20, validate=validate.Range(min=1, max=100))


class UserPageSchema(Schema):
    items = fields.List(fields.Nested(UserSchema), required=True)
    page = fields.Integer(required=True)
    per_page = fields.Integer(required=True)
    total = fields.Integer(required=True)
    pages = fields.Integer(required=True)
