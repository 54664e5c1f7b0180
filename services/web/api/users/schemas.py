from marshmallow import Schema, fields, validate

from ..models import Role
from ..schemas import StrictBoolean


class UserUpdateSchema(Schema):
    """What an admin may change; a field left out stays as it is (an empty body changes nothing)."""

    # The roles `flask deploy` keeps (api/models/role.py), so the spec lists them.
    role = fields.String(validate=validate.OneOf(list(Role.DEFAULTS)), metadata={"example": "admin"})
    active = StrictBoolean(metadata={"description": "false disables the account: its tokens stop working at once"})
