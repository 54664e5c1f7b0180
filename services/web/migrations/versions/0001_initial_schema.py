"""initial schema: roles, users, auth_state

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# MariaDB/MySQL (as api/models/columns.py says, kept here as it was): text in utf8mb4, keys compared
# byte for byte, a Unix time in a DOUBLE. The other databases ignore the mysql_ options.
MYSQL = ("mysql", "mariadb")
TABLE_OPTIONS = {"mysql_charset": "utf8mb4"}


def exact_string(length):
    return sa.String(length=length).with_variant(mysql.VARCHAR(length, collation="utf8mb4_bin"), *MYSQL)


def upgrade():
    op.create_table(
        "roles",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("permissions", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("is_default", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roles")),
        sa.UniqueConstraint("name", name=op.f("uq_roles_name")),
        **TABLE_OPTIONS,
    )
    op.create_index(op.f("ix_roles_is_default"), "roles", ["is_default"], unique=False)

    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.text("CURRENT_TIMESTAMP")
        ),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["role_id"], ["roles.id"], name=op.f("fk_users_role_id_roles")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        **TABLE_OPTIONS,
    )
    op.create_index(op.f("ix_users_role_id"), "users", ["role_id"], unique=False)
    # E-mail addresses are unique regardless of case: MySQL has no index on an expression, but its
    # default collation already compares without case.
    email_lower = ["email"] if op.get_bind().dialect.name in MYSQL else [sa.text("lower(email)")]
    op.create_index("ix_users_email_lower", "users", email_lower, unique=True)

    op.create_table(
        "auth_state",
        sa.Column("key", exact_string(200), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("expires_at", sa.Float().with_variant(mysql.DOUBLE(asdecimal=False), *MYSQL), nullable=True),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auth_state")),
        **TABLE_OPTIONS,
    )
    op.create_index(op.f("ix_auth_state_expires_at"), "auth_state", ["expires_at"], unique=False)


def downgrade():
    # A table's indexes go with it (MySQL would not drop ix_users_role_id alone: its foreign key needs it).
    op.drop_table("auth_state")
    op.drop_table("users")
    op.drop_table("roles")
