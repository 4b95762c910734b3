"""turns.vote (a thumbs up/down on a bot answer) and the customer's e-mail and language per conversation

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("vote", sa.String(8), nullable=True))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("customer_email", sa.String(320), nullable=True))
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("language")
        batch.drop_column("customer_email")
    with op.batch_alter_table("turns") as batch:
        batch.drop_column("vote")
