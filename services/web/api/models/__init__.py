"""Database models. The schema itself comes only from the migrations in ``services/web/migrations``."""

from .auth_state import AuthState
from .role import Permission, Role
from .user import User

__all__ = ["AuthState", "Permission", "Role", "User"]
