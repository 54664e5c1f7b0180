"""Database models. The schema itself comes only from the migrations in ``services/web/migrations``."""

from .role import Permission, Role
from .token_store_entry import TokenStoreEntry
from .user import User

__all__ = ["Permission", "Role", "TokenStoreEntry", "User"]
