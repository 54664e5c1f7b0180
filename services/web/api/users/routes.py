import math
from typing import Any

from flask import Response, make_response, request
from flask_smorest import Blueprint
from sqlalchemy import func, select

from ..auth.access import access_token_required, current_user
from ..auth.principal import Principal
from ..docs import BEARER_AUTH
from ..errors import ApiError
from ..extensions import db
from ..models import Permission, User
from ..schemas import ErrorSchema, PageArgsSchema, UserPageSchema, UserSchema
from .accounts import delete_account, role_named, update_account
from .schemas import UserUpdateSchema

blp = Blueprint("users", __name__, url_prefix="/api/users", description="User accounts")


@blp.route("/me")
@access_token_required
@blp.response(200, UserSchema)
@blp.doc(security=BEARER_AUTH)
def me() -> Principal:
    """The caller's profile."""
    return current_user


@blp.route("")
@access_token_required
@blp.arguments(PageArgsSchema, location="query")
@blp.response(200, UserPageSchema)
@blp.alt_response(403, schema=ErrorSchema, description="forbidden: the caller is not an admin")
@blp.doc(security=BEARER_AUTH)
def list_users(args: dict[str, Any]) -> dict[str, Any]:
    """Every account, oldest first (admins only)."""
    if not current_user.can(Permission.LIST_USERS):
        raise ApiError(403, "forbidden", "Only admins may list users")
    page, per_page = args["page"], args["per_page"]
    total = db.session.scalar(select(func.count()).select_from(User))
    items = db.session.scalars(select(User).order_by(User.id).limit(per_page).offset((page - 1) * per_page)).all()
    return {"items": items, "page": page, "per_page": per_page, "total": total, "pages": math.ceil(total / per_page)}


def account_to_manage(user_id: int) -> User:
    """The account ``user_id``, for a caller who may manage users."""
    if not current_user.can(Permission.MANAGE_USERS):
        raise ApiError(403, "forbidden", "Only admins may change accounts")
    user = db.session.get(User, user_id)
    if user is None:
        raise ApiError(404, "not_found", "No such user")
    return user


@blp.route("/<int(max=2147483647):user_id>", methods=["PATCH"])
@access_token_required
@blp.arguments(UserUpdateSchema)
@blp.response(200, UserSchema)
@blp.alt_response(403, schema=ErrorSchema, description="forbidden: the caller is not an admin")
@blp.alt_response(404, schema=ErrorSchema, description="not_found")
@blp.alt_response(409, schema=ErrorSchema, description="last_admin: it would leave no active admin")
@blp.doc(security=BEARER_AUTH)
def update_user(data: dict[str, Any], user_id: int) -> User:
    """Change an account's role or disable/enable it (admins only). Taking rights away signs the
    user out everywhere at once: their next request with any earlier token is refused."""
    if not request.get_data(cache=True):
        # Every field may be left out, but not the body: a PATCH that sent nothing is a mistake.
        raise ApiError(422, "validation_error", "The request is invalid", details={"body": ["Send a JSON object."]})
    user = account_to_manage(user_id)
    role = role_named(data["role"]) if "role" in data else None
    return update_account(user, role=role, active=data.get("active"))


@blp.route("/<int(max=2147483647):user_id>", methods=["DELETE"])
@access_token_required
@blp.response(204)
@blp.alt_response(403, schema=ErrorSchema, description="forbidden: the caller is not an admin")
@blp.alt_response(404, schema=ErrorSchema, description="not_found")
@blp.alt_response(409, schema=ErrorSchema, description="last_admin: it would leave no active admin")
@blp.doc(security=BEARER_AUTH)
def delete_user(user_id: int) -> Response:
    """Delete an account (admins only); its tokens stop working at once."""
    delete_account(account_to_manage(user_id))
    return make_response("", 204)
