"""Authentication: register, login, refresh rotation, logout, logout everywhere."""
