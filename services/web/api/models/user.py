from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, String, func, select
from sqlalchemy.orm import Mapped, mapped_column, relationship, validates

from .. import emails
from ..extensions import Model, db
from .columns import exact_string
from .role import Role


class User(Model):
    __tablename__ = "users"
    # SQLite would otherwise hand a deleted user's id to the next new one, and an old token with it.
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    # Unique, and what every lookup compares (api/emails.py): set whenever ``email`` is.
    email_normalized: Mapped[str] = mapped_column(exact_string(254), index=True, unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=lambda: datetime.now(UTC), server_default=func.now()
    )
    # None until the owner follows the link mailed to the address (api/auth/links.py).
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"), index=True)
    role: Mapped[Role] = relationship(lazy="joined")

    @validates("email")
    def keep_normalized(self, _key: str, email: str) -> str:
        self.email_normalized = emails.normalized(email)
        return emails.typed(email)

    @property
    def role_name(self) -> str:
        return self.role.name

    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None

    @classmethod
    def by_email(cls, email: str) -> "User | None":
        return db.session.scalar(select(cls).where(cls.email_normalized == emails.normalized(email)))
