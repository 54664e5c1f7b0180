from sqlalchemy import Float, String
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model


class TokenStoreEntry(Model):
    """The token store's rows when BLACKLIST_STORAGE_TYPE=database; ``flask prune-tokens`` drops
    expired ones. The table keeps the name the first migration gave it."""

    __tablename__ = "auth_state"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    value: Mapped[str] = mapped_column(String(200))
    # Unix time; a float keeps comparisons identical on Postgres and SQLite.
    expires_at: Mapped[float | None] = mapped_column(Float, index=True)
