"""the token store's values as text of any length: a cached profile of a long address outgrew 200

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table("auth_state") as batch:
        batch.alter_column("value", existing_type=sa.String(200), type_=sa.Text(), existing_nullable=False)


def downgrade():
    # Only cached profiles are that long: a cache, read again from the users table when missing.
    op.execute("DELETE FROM auth_state WHERE LENGTH(value) > 200")
    with op.batch_alter_table("auth_state") as batch:
        batch.alter_column("value", existing_type=sa.Text(), type_=sa.String(200), existing_nullable=False)
