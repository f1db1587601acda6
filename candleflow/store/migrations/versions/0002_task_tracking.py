"""Task tracking tables, one per domain: {domain}_task_tracking (candleflow.tracking.models).

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Frozen here on purpose: a later change to the models gets its own revision.
DOMAINS = ("candle_ingest", "derived_bars", "indicators", "scans")


def _create(domain: str) -> None:
    table = f"{domain}_task_tracking"
    op.create_table(
        table,
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("error_message", sa.Text, nullable=True),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("max_attempts", sa.Integer, nullable=False, server_default="3"),
        sa.Column("run_id", sa.String(64), nullable=False,
                  comment="Dagster run that last started (or created) the task"),
        sa.Column("root_run_id", sa.String(64), nullable=False, comment="first run of the run-retry chain"),
        sa.Column("step_key", sa.String(255), nullable=False),
        sa.Column("partition_key", sa.String(255), nullable=False),
        sa.Column("items_completed", sa.Integer, nullable=True),
        sa.Column("items_total", sa.Integer, nullable=True),
        sa.Column("metadata_json", sa.JSON, nullable=True, comment="parent task, dependencies"),
        sa.Column("symbol", sa.String(16), nullable=True),
        sa.Column("interval", sa.String(4), nullable=True),
        sa.Column("span_start", sa.BigInteger, nullable=True, comment="first bar written, epoch s"),
        sa.Column("span_end", sa.BigInteger, nullable=True, comment="last bar written, epoch s"),
        sa.Column("rows_written", sa.BigInteger, nullable=False, server_default="0"),
        sa.UniqueConstraint("root_run_id", "step_key", "partition_key", name=f"uq_{domain}_task_key"),
        sa.CheckConstraint("status IN ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED', 'CANCELLED')",
                           name=f"ck_{domain}_task_status"),
    )
    op.create_index(f"idx_{domain}_task_status", table, ["status"])
    op.create_index(f"idx_{domain}_task_dates", table, ["created_at", "completed_at"])
    op.create_index(f"idx_{domain}_task_run", table, ["run_id"])


def upgrade() -> None:
    for domain in DOMAINS:
        _create(domain)


def downgrade() -> None:
    for domain in reversed(DOMAINS):
        op.drop_index(f"idx_{domain}_task_run", table_name=f"{domain}_task_tracking")
        op.drop_index(f"idx_{domain}_task_dates", table_name=f"{domain}_task_tracking")
        op.drop_index(f"idx_{domain}_task_status", table_name=f"{domain}_task_tracking")
        op.drop_table(f"{domain}_task_tracking")
