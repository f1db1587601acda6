"""``run_chunks``: the finished chunks of sessions of a run chain's steps, so that a killed
backfill continues from its first unfinished chunk (candleflow.tracking.models.RunChunk).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run_chunks",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("root_run_id", sa.String(64), nullable=False),
        sa.Column("step_key", sa.String(255), nullable=False),
        sa.Column("symbols_key", sa.String(40), nullable=False, comment="sha1 of the step's stages and symbols"),
        sa.Column("run_id", sa.String(64), nullable=False, comment="Dagster run that ran the chunk"),
        sa.Column("first_session", sa.String(10), nullable=False),
        sa.Column("last_session", sa.String(10), nullable=False),
        sa.Column("sessions", sa.Integer, nullable=False),
        sa.Column("symbols", sa.Integer, nullable=False),
        sa.Column("rows_written", sa.BigInteger, nullable=False),
        sa.Column("seconds", sa.Float, nullable=False),
        sa.Column("failures", sa.JSON, nullable=False, comment="stage -> symbol -> reason"),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("root_run_id", "step_key", "symbols_key", "first_session", name="uq_run_chunks_key"),
    )


def downgrade() -> None:
    op.drop_table("run_chunks")
