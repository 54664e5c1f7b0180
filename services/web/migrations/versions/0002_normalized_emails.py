"""e-mail addresses unique as compared (NFKC, case-folded) on every database; SQLite never reuses a user id

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02
"""

import unicodedata

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import mysql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

EXACT = sa.String(length=254).with_variant(mysql.VARCHAR(254, collation="utf8mb4_bin"), "mysql", "mariadb")
users = sa.table(
    "users",
    sa.column("id", sa.Integer),
    sa.column("email", sa.String),
    sa.column("email_normalized", sa.String),
)


# As api/emails.py does today; a migration keeps its own copy, so that it means the same forever.
def typed(email: str) -> str:
    return unicodedata.normalize("NFKC", email.strip())


def normalized(email: str) -> str:
    return typed(email).casefold()


def upgrade():
    bind = op.get_bind()
    rows = bind.execute(sa.select(users.c.id, users.c.email).order_by(users.c.id)).all()
    owners: dict[str, int] = {}
    collisions = []
    for user_id, email in rows:
        key = normalized(email)
        if key in owners:
            collisions.append(f"users {owners[key]} and {user_id} are both {key!r}")
        owners.setdefault(key, user_id)
    if collisions:
        raise RuntimeError(
            "These accounts become one address when compared normalised; merge or rename them, then "
            "run `flask deploy` again: " + "; ".join(collisions)
        )
    op.drop_index("ix_users_email_lower", table_name="users")
    # On SQLite the table is rebuilt with AUTOINCREMENT (a deleted user's id is never handed out
    # again); elsewhere the column is simply added.
    with op.batch_alter_table("users", recreate="auto", table_kwargs={"sqlite_autoincrement": True}) as batch:
        # Compared byte for byte on MySQL too (its default collation would call "é" and "e" the same).
        batch.add_column(sa.Column("email_normalized", EXACT, nullable=True))
    for user_id, email in rows:
        bind.execute(
            users.update().where(users.c.id == user_id).values(email=typed(email), email_normalized=normalized(email))
        )
    recreate = "always" if bind.dialect.name == "sqlite" else "auto"
    with op.batch_alter_table("users", recreate=recreate, table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.alter_column("email_normalized", existing_type=EXACT, nullable=False)
        batch.create_index(op.f("ix_users_email_normalized"), ["email_normalized"], unique=True)


def downgrade():
    with op.batch_alter_table("users") as batch:
        batch.drop_index(op.f("ix_users_email_normalized"))
        batch.drop_column("email_normalized")
    email_lower = ["email"] if op.get_bind().dialect.name in ("mysql", "mariadb") else [sa.text("lower(email)")]
    op.create_index("ix_users_email_lower", "users", email_lower, unique=True)
