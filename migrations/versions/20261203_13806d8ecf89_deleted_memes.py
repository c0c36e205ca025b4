"""generations.deleted_at: when the meme's message was deleted on Discord (then it leaves /top,
/stats, reconciliation and curation; the row stays, so its id and votes are still known).

Revision ID: 13806d8ecf89
Revises: 5b7d2e9c4a16
Create Date: 2026-12-03 06:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "13806d8ecf89"
down_revision: str | Sequence[str] | None = "5b7d2e9c4a16"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("generations") as batch:
        batch.drop_column("deleted_at")
