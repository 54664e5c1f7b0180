"""Scheduled Postgres backups: pg_dump in custom format, a checksum beside each dump, retention,
optional encryption to an age public key, an off-site copy command, and restore."""
