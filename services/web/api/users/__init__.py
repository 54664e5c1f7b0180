"""Users: the caller's own profile and, for admins, the list."""
