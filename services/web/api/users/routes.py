import math
from typing import Any

from flask_smorest import Blueprint
from sqlalchemy import func, select

from ..auth.access import access_token_required, current_user
from ..auth.principal import Principal
from ..docs import BEARER_AUTH
from ..errors import ApiError
from ..extensions import db
from ..models import Permission, User
from ..schemas import ErrorSchema, PageArgsSchema, UserPageSchema, UserSchema

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
