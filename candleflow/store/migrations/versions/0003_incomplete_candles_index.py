"""Partial index of the incomplete candles, so that a run finds the bars earlier runs left open
without scanning the candles (``CandleStore.complete_ended_bars``).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INCOMPLETE = sa.text("NOT complete")


def upgrade() -> None:
    # IF NOT EXISTS: a database made by schema.metadata.create_all (stamped, then upgraded) has it.
    op.create_index("idx_candles_incomplete", "candles", ["symbol", "interval", "bar_start"],
                    postgresql_where=INCOMPLETE, sqlite_where=INCOMPLETE, if_not_exists=True)


def downgrade() -> None:
    op.drop_index("idx_candles_incomplete", table_name="candles")
