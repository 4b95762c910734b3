"""transcripts: conversations, turns, form requests

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "conversations",
        sa.Column("id", sa.String(128), primary_key=True),
        sa.Column("channel", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("turns", sa.Integer, nullable=False),
        sa.Column("handoff", sa.Boolean, nullable=False),
        sa.Column("handoff_reason", sa.String(64), nullable=True),
    )
    op.create_table(
        "turns",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_text", sa.Text, nullable=False),
        sa.Column("intent", sa.String(64), nullable=True),
        sa.Column("confidence", sa.Float, nullable=True),
        sa.Column("out_of_scope", sa.Boolean, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("action_name", sa.String(128), nullable=False),
        sa.Column("understood", sa.Boolean, nullable=False),
        sa.Column("faq_entry", sa.String(128), nullable=True),
        sa.Column("faq_score", sa.Float, nullable=True),
        sa.Column("replies", sa.JSON, nullable=False),
        sa.Column("ranking", sa.JSON, nullable=False),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.UniqueConstraint("conversation_id", "message_id", name="uq_turn_message"),
    )
    op.create_index("ix_turns_conversation_id", "turns", ["conversation_id"])
    op.create_index("ix_turns_at", "turns", ["at"])
    op.create_index("ix_turns_intent", "turns", ["intent"])
    op.create_table(
        "form_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("conversation_id", sa.String(128), sa.ForeignKey("conversations.id"), nullable=False),
        sa.Column("form", sa.String(64), nullable=False),
        sa.Column("slots", sa.JSON, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
    )
    op.create_index("ix_form_requests_conversation_id", "form_requests", ["conversation_id"])


def downgrade() -> None:
    op.drop_table("form_requests")
    op.drop_table("turns")
    op.drop_table("conversations")
