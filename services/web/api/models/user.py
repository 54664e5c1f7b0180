from datetime import UTC, datetime

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, String, func, select, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from ..extensions import db
from .role import Role


class User(db.Model):
    __tablename__ = "users"
    # Unique regardless of case, while keeping the address as the user typed it.
    __table_args__ = (Index("ix_users_email_lower", text("lower(email)"), unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(255))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), default=lambda: datetime.now(UTC), server_default=func.now()
    )
    role_id: Mapped[int] = mapped_column(ForeignKey("roles.id"), index=True)
    role: Mapped[Role] = relationship(lazy="joined")

    @property
    def role_name(self) -> str:
        return self.role.name

    @classmethod
    def by_email(cls, email: str) -> "User | None":
        return db.session.scalar(select(cls).where(func.lower(cls.email) == email.strip().lower()))
