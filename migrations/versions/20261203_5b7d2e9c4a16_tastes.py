"""Per-guild tastes: taste_versions, guilds (when the bot left), retrain_runs.kind.

A run is now a base run (the shared generator) or a taste run (one guild's): one base run at a
time as before, and one taste run per guild at a time, each a partial unique index.

Revision ID: 5b7d2e9c4a16
Revises: 62e52be382fe
Create Date: 2026-12-03 06:14:52
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5b7d2e9c4a16"
down_revision: str | Sequence[str] | None = "62e52be382fe"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_WHERE = sa.text("in_progress")
BASE_WHERE = sa.text("in_progress AND kind = 'base'")
TASTE_WHERE = sa.text("in_progress AND kind = 'taste'")


def upgrade() -> None:
    op.create_table(
        "guilds",
        sa.Column("guild_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("left_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("guild_id", name=op.f("pk_guilds")),
    )
    with op.batch_alter_table("guilds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_guilds_left_at"), ["left_at"], unique=False)

    op.create_table(
        "taste_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("guild_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("base_version", sa.String(length=100), nullable=False),
        sa.Column("n_votes", sa.Integer(), nullable=False),
        sa.Column("heldout_auc", sa.Float(), nullable=True),
        sa.Column("path", sa.String(length=1000), nullable=True),
        sa.Column("blob", sa.LargeBinary(), nullable=True),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("created_by", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("previous_version", sa.Integer(), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.CheckConstraint(
            "path IS NOT NULL OR blob IS NOT NULL", name=op.f("ck_taste_versions_path_or_blob")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_taste_versions")),
    )
    with op.batch_alter_table("taste_versions", schema=None) as batch_op:
        batch_op.create_index(
            "uq_taste_versions_guild_id_version", ["guild_id", "version"], unique=True
        )
        batch_op.create_index(
            "uq_taste_versions_one_active",
            ["guild_id"],
            unique=True,
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )

    # The partial index is dropped before the batch (SQLite recreates the table, and a partial
    # index's WHERE may not survive reflection) and made again after with the new condition.
    op.drop_index(
        "uq_retrain_runs_one_in_progress",
        table_name="retrain_runs",
        sqlite_where=OLD_WHERE,
        postgresql_where=OLD_WHERE,
    )
    with op.batch_alter_table("retrain_runs", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("kind", sa.String(length=8), server_default=sa.text("'base'"), nullable=False)
        )
        batch_op.create_check_constraint(
            op.f("ck_retrain_runs_kind_known"), "kind IN ('base', 'taste')"
        )
        batch_op.create_check_constraint(
            op.f("ck_retrain_runs_taste_has_guild"), "kind <> 'taste' OR guild_id IS NOT NULL"
        )
    op.create_index(
        "uq_retrain_runs_one_in_progress",
        "retrain_runs",
        ["in_progress"],
        unique=True,
        sqlite_where=BASE_WHERE,
        postgresql_where=BASE_WHERE,
    )
    op.create_index(
        "uq_retrain_runs_one_taste_per_guild",
        "retrain_runs",
        ["guild_id"],
        unique=True,
        sqlite_where=TASTE_WHERE,
        postgresql_where=TASTE_WHERE,
    )


def downgrade() -> None:
    op.drop_index(
        "uq_retrain_runs_one_taste_per_guild",
        table_name="retrain_runs",
        sqlite_where=TASTE_WHERE,
        postgresql_where=TASTE_WHERE,
    )
    op.drop_index(
        "uq_retrain_runs_one_in_progress",
        table_name="retrain_runs",
        sqlite_where=BASE_WHERE,
        postgresql_where=BASE_WHERE,
    )
    # The older schema knows one kind of run, one in progress at all: taste runs go.
    op.execute("DELETE FROM retrain_runs WHERE kind = 'taste'")
    with op.batch_alter_table("retrain_runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_retrain_runs_taste_has_guild"), type_="check")
        batch_op.drop_constraint(op.f("ck_retrain_runs_kind_known"), type_="check")
        batch_op.drop_column("kind")
    op.create_index(
        "uq_retrain_runs_one_in_progress",
        "retrain_runs",
        ["in_progress"],
        unique=True,
        sqlite_where=OLD_WHERE,
        postgresql_where=OLD_WHERE,
    )

    with op.batch_alter_table("taste_versions", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_taste_versions_one_active",
            sqlite_where=sa.text("active"),
            postgresql_where=sa.text("active"),
        )
        batch_op.drop_index("uq_taste_versions_guild_id_version")
    op.drop_table("taste_versions")

    with op.batch_alter_table("guilds", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_guilds_left_at"))
    op.drop_table("guilds")
