"""Domain store tables: candles, indicator_values, signals (as candleflow.store.schema defines them).

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "candles",
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("interval", sa.String(4), primary_key=True),
        sa.Column("bar_start", sa.BigInteger, primary_key=True, comment="bar start, Unix epoch seconds UTC"),
        sa.Column("open", sa.Float(53), nullable=False),
        sa.Column("high", sa.Float(53), nullable=False),
        sa.Column("low", sa.Float(53), nullable=False),
        sa.Column("close", sa.Float(53), nullable=False),
        sa.Column("volume", sa.Float(53), nullable=False),
        sa.Column("minutes", sa.Integer, nullable=False, comment="1m bars that went into the bar"),
        sa.Column("complete", sa.Boolean, nullable=False),
    )
    op.create_table(
        "indicator_values",
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("interval", sa.String(4), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("bar_start", sa.BigInteger, primary_key=True),
        sa.Column("value", sa.Float(53), nullable=False),
    )
    op.create_table(
        "signals",
        sa.Column("scan", sa.String(64), primary_key=True),
        sa.Column("symbol", sa.String(16), primary_key=True),
        sa.Column("interval", sa.String(4), primary_key=True),
        sa.Column("bar_start", sa.BigInteger, primary_key=True),
        sa.Column("formula", sa.Text, nullable=False),
        sa.Column("term_values", sa.Text, nullable=False, comment="JSON: value of each formula term"),
    )


def downgrade() -> None:
    op.drop_table("signals")
    op.drop_table("indicator_values")
    op.drop_table("candles")
