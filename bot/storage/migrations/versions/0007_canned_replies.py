"""canned_replies: answers agents insert with a `/shortcut`, managed by admins

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "canned_replies",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("shortcut", sa.String(32), nullable=False, unique=True),
        sa.Column("title", sa.String(128), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("updated_by", sa.String(64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("canned_replies")
