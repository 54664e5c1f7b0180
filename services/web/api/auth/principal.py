"""Who a valid token belongs to, without a database query on every request.

A user's public profile (id, email, role, permissions, created_at, email_verified) is cached in the token
store next to the revocation entries, so one round trip (``revocation.session_state``) answers
"is this token revoked?" and "who is it?" together. A miss reads the database once and fills the
cache. Changes made through the ORM forget the cached profile when they commit; anything else (SQL
by hand, a role's permissions changed by ``flask deploy``) shows within ``PROFILE_CACHE_SECONDS``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from flask import Flask
from sqlalchemy import event, select
from sqlalchemy.orm import Session

from ..extensions import db
from ..models import Permission, Role, User
from ..token_store import StoreUnavailable, current_token_store, keys

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Principal:
    id: int
    email: str
    role_name: str
    permissions: int
    created_at: datetime
    email_verified: bool

    # Only active users have a principal (load_principal): for the user schema's ``active``.
    is_active = True

    def can(self, permission: Permission) -> bool:
        return Permission(self.permissions) & permission == permission

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": self.id,
                "email": self.email,
                "role": self.role_name,
                "permissions": self.permissions,
                "created_at": self.created_at.isoformat(),
                "email_verified": self.email_verified,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Principal:
        data = json.loads(text)
        return cls(
            data["id"],
            data["email"],
            data["role"],
            data["permissions"],
            datetime.fromisoformat(data["created_at"]),
            data.get("email_verified", False),  # a profile cached before the field existed
        )


def load_principal(user_id: int, cached: str | None, ttl: float) -> Principal | None:
    """The active user ``user_id``: from the cached profile when there is one, else from the database."""
    if cached is not None:
        return Principal.from_json(cached)
    query = (
        select(User.id, User.email, Role.name, Role.permissions, User.created_at, User.email_verified_at)
        .join(Role, User.role_id == Role.id)
        .where(User.id == user_id, User.is_active.is_(True))
    )
    with db.engine.connect() as connection:
        row = connection.execute(query).first()
    if row is None:
        return None
    user_id, email, role_name, permissions, created_at, verified_at = row
    principal = Principal(user_id, email, role_name, permissions, created_at, verified_at is not None)
    current_token_store().set_many([(keys.profile(user_id), principal.to_json(), ttl)])
    return principal


def forget_profiles(user_ids: Iterable[int]) -> None:
    try:
        current_token_store().delete(*(keys.profile(user_id) for user_id in user_ids))
    except StoreUnavailable as error:
        # The change is committed; the cached profile expires on its own.
        log.warning("could not forget cached profiles %s: %s", sorted(user_ids), error)


def init_app(app: Flask) -> None:
    """Forget a user's cached profile once a change to that user commits (not before: a request
    between the flush and the commit would cache the old row again). The listeners are on the app's
    own sessions (``db.session``), not every SQLAlchemy session in the process."""
    if event.contains(db.session, "after_commit", forget_changed_users):
        return  # a second app in the same process shares ``db``
    event.listen(db.session, "after_flush", remember_changed_users)
    event.listen(db.session, "after_commit", forget_changed_users)
    event.listen(db.session, "after_rollback", discard_changed_users)


def remember_changed_users(session: Session, _context: object) -> None:
    changed = {obj.id for obj in (*session.dirty, *session.deleted) if isinstance(obj, User)}
    session.info.setdefault("changed_users", set()).update(changed)


def forget_changed_users(session: Session) -> None:
    changed = session.info.pop("changed_users", None)
    if changed:
        forget_profiles(changed)


def discard_changed_users(session: Session) -> None:
    session.info.pop("changed_users", None)
