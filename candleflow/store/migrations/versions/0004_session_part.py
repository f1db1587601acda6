"""The part of the session of each bar (``candles.part``: pre, regular or post), so that the
extended-hours minutes vendors print are stored marked as such.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A database made by schema.metadata.create_all (stamped at 0001, then upgraded) has it.
    if "part" in {column["name"] for column in sa.inspect(op.get_bind()).get_columns("candles")}:
        return
    with op.batch_alter_table("candles") as batch:
        batch.add_column(sa.Column("part", sa.String(8), nullable=False, server_default="regular",
                                   comment="pre, regular or post: the part of the session a bar is in"))


def downgrade() -> None:
    with op.batch_alter_table("candles") as batch:
        batch.drop_column("part")
