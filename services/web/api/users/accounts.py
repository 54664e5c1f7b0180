"""Changing an account on an admin's or an operator's word (``PATCH``/``DELETE /api/users/<id>``,
``flask users``): its role, whether it is active, deleting it.

Whatever takes rights away (disabling, deleting, a role with fewer permissions) ends the user's
sessions: their token version is bumped in the token store before the change and again after its
commit (``every_session_ends_with``), so every token issued before is refused on the very next
request, in every worker and replica, by the one store round trip each request makes already; the
commit forgets the cached profile. When the store cannot be reached nothing changes (503): fail
closed. Giving rights (a role with
more permissions, enabling) needs no sign-out: the profile is read again after the commit.

The last active admin (a user who may manage users) cannot be demoted, disabled or deleted.
"""

from __future__ import annotations

from contextlib import nullcontext

from sqlalchemy import select

from ..auth.revocation import every_session_ends_with
from ..errors import ApiError
from ..extensions import db
from ..models import Permission, Role, User


def manages_users(role: Role) -> bool:
    return Permission(role.permissions) & Permission.MANAGE_USERS == Permission.MANAGE_USERS


def other_admins(user: User) -> int:
    """Active admins besides ``user``, their rows locked until the commit (Postgres), so two admins
    demoting each other at once cannot both succeed."""
    query = (
        select(User.id)
        .join(Role, User.role_id == Role.id)
        .where(
            Role.permissions.op("&")(int(Permission.MANAGE_USERS)) != 0,
            User.is_active.is_(True),
            User.id != user.id,
        )
        .with_for_update(of=User)
    )
    return len(db.session.scalars(query).all())


def refuse_last_admin(user: User, keeps_admin: bool) -> None:
    if user.is_active and manages_users(user.role) and not keeps_admin and other_admins(user) == 0:
        db.session.rollback()
        raise ApiError(409, "last_admin", "This is the last active admin: make another admin first")


def role_named(name: str) -> Role:
    role = db.session.scalar(select(Role).where(Role.name == name))
    if role is None:
        known = sorted(db.session.scalars(select(Role.name)).all())
        raise ApiError(
            422, "validation_error", "The request is invalid", details={"role": [f"One of: {', '.join(known)}."]}
        )
    return role


def update_account(user: User, role: Role | None = None, active: bool | None = None) -> User:
    new_role = role or user.role
    stays_active = user.is_active if active is None else active
    refuse_last_admin(user, keeps_admin=stays_active and manages_users(new_role))
    loses_rights = (user.is_active and not stays_active) or int(user.role.permissions) & ~int(new_role.permissions) != 0
    with every_session_ends_with(user.id) if loses_rights else nullcontext():
        user.role = new_role
        user.is_active = stays_active
        db.session.commit()
    return user


def delete_account(user: User) -> None:
    refuse_last_admin(user, keeps_admin=False)
    with every_session_ends_with(user.id):
        db.session.delete(user)
        db.session.commit()
