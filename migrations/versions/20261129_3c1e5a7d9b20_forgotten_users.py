"""forgotten_users: who asked /forget-me, and when (their older reactions are no votes).

Revision ID: 3c1e5a7d9b20
Revises: 88f4059480e2
Create Date: 2026-11-29 22:40:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision: str = "3c1e5a7d9b20"
down_revision: str | Sequence[str] | None = "88f4059480e2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "forgotten_users",
        sa.Column("user_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("forgotten_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("user_id", name=op.f("pk_forgotten_users")),
    )


def downgrade() -> None:
    op.drop_table("forgotten_users")
