"""analytics: the indexes the console's analytics queries use, and the `ratings` table (CSAT 1..5)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

UNANSWERED = "(NOT understood OR out_of_scope OR action = 'handoff')"

# name, table, columns, partial-index condition (SQLite and PostgreSQL both have partial indexes).
# benchmarks/analytics.py drops and re-creates exactly these to measure what they are worth.
INDEXES: list[tuple[str, str, list[str], str | None]] = [
    # conversations of a period (and of one channel): volume, resolution, hand-off reasons
    ("ix_conversations_started_at", "conversations", ["started_at"], None),
    ("ix_conversations_channel_started_at", "conversations", ["channel", "started_at"], None),
    # resolution per conversation, read from the index alone (PostgreSQL: an index-only scan)
    ("ix_turns_resolution", "turns", ["conversation_id", "id", "action", "action_name", "understood",
                                      "feedback"], None),
    # per-bucket counts of the turns of a period: votes and "did that answer" without the table
    ("ix_turns_at_outcome", "turns", ["at", "channel", "vote", "feedback", "intent"], None),
    ("ix_turns_faq", "turns", ["at", "faq_entry", "vote", "feedback"], "faq_entry IS NOT NULL"),
    ("ix_turns_unanswered", "turns", ["at"], UNANSWERED),
    ("ix_turns_handoff", "turns", ["conversation_id", "at"], "action = 'handoff'"),
    # agents' first response and handling time
    ("ix_agent_messages_conversation_at", "agent_messages", ["conversation_id", "at", "agent"], None),
]


def create_indexes(ops: Any) -> None:
    for name, table, columns, where in INDEXES:
        extra = {} if where is None else {"sqlite_where": sa.text(where), "postgresql_where": sa.text(where)}
        ops.create_index(name, table, columns, **extra)


def drop_indexes(ops: Any) -> None:
    for name, table, _, _ in reversed(INDEXES):
        ops.drop_index(name, table_name=table)


def upgrade() -> None:
    op.create_table(
        "ratings",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), nullable=False),
        sa.Column("score", sa.Integer, sa.CheckConstraint("score BETWEEN 1 AND 5", name="ck_ratings_score"),
                  nullable=False),
        sa.Column("comment", sa.Text, nullable=True),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ratings_conversation_id", "ratings", ["conversation_id"])
    op.create_index("ix_ratings_created_at", "ratings", ["created_at"])
    create_indexes(op)


def downgrade() -> None:
    drop_indexes(op)
    op.drop_index("ix_ratings_created_at", table_name="ratings")
    op.drop_index("ix_ratings_conversation_id", table_name="ratings")
    op.drop_table("ratings")
