from sqlalchemy import Text
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import Model
from .columns import exact_string, unix_time


class TokenStoreEntry(Model):
    """The token store's rows when BLACKLIST_STORAGE_TYPE=database; ``flask prune-tokens`` drops
    expired ones. The table keeps the name the first migration gave it."""

    __tablename__ = "auth_state"

    key: Mapped[str] = mapped_column(exact_string(200), primary_key=True)
    # Text: a cached profile holds an address of up to 254 characters, and more (migration 0004).
    value: Mapped[str] = mapped_column(Text)
    # Unix time; a float keeps comparisons identical on every database.
    expires_at: Mapped[float | None] = mapped_column(unix_time(), index=True)
