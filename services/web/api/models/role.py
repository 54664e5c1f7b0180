from enum import IntFlag

from sqlalchemy import Boolean, Integer, String, select
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model, db


class Permission(IntFlag):
    VIEW_OWN_PROFILE = 1
    LIST_USERS = 2
    MANAGE_USERS = 4


class Role(Model):
    __tablename__ = "roles"

    # name -> (permissions, default role for new users)
    DEFAULTS = {
        "user": (Permission.VIEW_OWN_PROFILE, True),
        "admin": (Permission.VIEW_OWN_PROFILE | Permission.LIST_USERS | Permission.MANAGE_USERS, False),
    }

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    permissions: Mapped[int] = mapped_column(Integer, default=0)
    is_default: Mapped[bool] = mapped_column(Boolean, default=False, index=True)

    @classmethod
    def insert_defaults(cls) -> list[str]:
        """Create or update the default roles; safe to run on every deploy. Returns what changed."""
        changed = []
        for name, (permissions, is_default) in cls.DEFAULTS.items():
            role = db.session.scalar(select(cls).where(cls.name == name))
            if role is None:
                role = cls(name=name)
                db.session.add(role)
            if (role.permissions, role.is_default) != (int(permissions), is_default):
                role.permissions = int(permissions)
                role.is_default = is_default
                changed.append(name)
        db.session.commit()
        return changed

    @classmethod
    def default(cls) -> "Role":
        role = db.session.scalar(select(cls).where(cls.is_default.is_(True)))
        if role is None:
            raise RuntimeError("No default role: run `flask deploy` to insert the roles")
        return role
