"""turns unique per conversation, channel and message id

Two channels may deliver the same message id into one conversation: both are answered (the reply
cache is keyed by channel too), so both belong in the transcript. Existing turns take their
conversation's channel.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns") as batch:
        batch.add_column(sa.Column("channel", sa.String(32), nullable=False, server_default=""))
    op.execute("UPDATE turns SET channel = COALESCE((SELECT conversations.channel FROM conversations "
               "WHERE conversations.id = turns.conversation_id), '')")
    with op.batch_alter_table("turns") as batch:
        batch.drop_constraint("uq_turn_message", type_="unique")
        batch.create_unique_constraint("uq_turn_channel_message",
                                       ["conversation_id", "channel", "message_id"])


def downgrade() -> None:
    # Turns that differ only by channel cannot all stay under the old key: keep the first of each.
    op.execute("DELETE FROM turns WHERE id NOT IN (SELECT MIN(id) FROM turns "
               "GROUP BY conversation_id, message_id)")
    with op.batch_alter_table("turns") as batch:
        batch.drop_constraint("uq_turn_channel_message", type_="unique")
        batch.create_unique_constraint("uq_turn_message", ["conversation_id", "message_id"])
        batch.drop_column("channel")
