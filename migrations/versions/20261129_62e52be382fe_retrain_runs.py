"""Retraining runs (retrain/): status, stage, progress, gate numbers; one in progress at a time.

Revision ID: 62e52be382fe
Revises: 3c1e5a7d9b20
Create Date: 2026-11-29 21:55:22.091405
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "62e52be382fe"
down_revision: str | Sequence[str] | None = "3c1e5a7d9b20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retrain_runs",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("mode", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=100), nullable=True),
        sa.Column("guild_id", sa.BigInteger(), nullable=True),
        sa.Column("channel_id", sa.BigInteger(), nullable=True),
        sa.Column("message_id", sa.BigInteger(), nullable=True),
        sa.Column("stage", sa.String(length=32), nullable=False),
        sa.Column("progress", sa.JSON(), nullable=False),
        sa.Column("error", sa.String(length=2000), nullable=True),
        sa.Column("parent_version", sa.String(length=100), nullable=True),
        sa.Column("candidate_version", sa.String(length=100), nullable=True),
        sa.Column("gate", sa.JSON(), nullable=False),
        sa.Column("worker", sa.String(length=200), nullable=True),
        sa.Column("in_progress", sa.Boolean(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("mode IN ('finetune', 'full')", name=op.f("ck_retrain_runs_mode_known")),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'rejected', 'failed')",
            name=op.f("ck_retrain_runs_status_known"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrain_runs")),
    )
    with op.batch_alter_table("retrain_runs", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_retrain_runs_status"), ["status"], unique=False)
        batch_op.create_index(
            "uq_retrain_runs_one_in_progress",
            ["in_progress"],
            unique=True,
            sqlite_where=sa.text("in_progress"),
            postgresql_where=sa.text("in_progress"),
        )


def downgrade() -> None:
    with op.batch_alter_table("retrain_runs", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_retrain_runs_one_in_progress",
            sqlite_where=sa.text("in_progress"),
            postgresql_where=sa.text("in_progress"),
        )
        batch_op.drop_index(batch_op.f("ix_retrain_runs_status"))

    op.drop_table("retrain_runs")
