"""Conversations, exchanges with their hash chain, flags and the audit trail.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
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
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("channel", sa.String(256), nullable=False),
        sa.Column("thread", sa.String(256), nullable=False),
        sa.Column("started", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("platform", "tenant", "channel", "thread"),
    )
    op.create_index("ix_conversations_tenant", "conversations", ["tenant"])
    op.create_table(
        "exchanges",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column(
            "conversation_id", sa.Integer(), sa.ForeignKey("conversations.id"), nullable=False
        ),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(256), nullable=False),
        sa.Column("thread", sa.String(256), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("user_name", sa.String(256), nullable=False),
        sa.Column("input_text", sa.Text(), nullable=False),
        sa.Column("reply_text", sa.Text(), nullable=False),
        sa.Column("refused", sa.Boolean(), nullable=False),
        sa.Column("grounded", sa.Boolean(), nullable=False),
        sa.Column("moderation", sa.JSON(), nullable=False),
        sa.Column("citations", sa.JSON(), nullable=False),
        sa.Column("retrieved", sa.JSON(), nullable=False),
        sa.Column("prompt_version", sa.String(128), nullable=False),
        sa.Column("model_id", sa.String(256), nullable=False),
        sa.Column("options", sa.JSON(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("retrieval_ms", sa.Float(), nullable=False),
        sa.Column("ttft_ms", sa.Float(), nullable=False),
        sa.Column("generation_ms", sa.Float(), nullable=False),
        sa.Column("total_ms", sa.Float(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("stored_at", sa.DateTime(), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("tenant", "seq"),
    )
    op.create_index("ix_exchanges_conversation_id", "exchanges", ["conversation_id"])
    op.create_index("ix_exchanges_platform", "exchanges", ["platform"])
    op.create_index("ix_exchanges_user_id", "exchanges", ["user_id"])
    op.create_index("ix_exchanges_created", "exchanges", ["created"])
    op.create_index("ix_exchanges_tenant_created", "exchanges", ["tenant", "created"])
    op.create_table(
        "chain_heads",
        sa.Column("tenant", sa.String(128), primary_key=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
    )
    op.create_table(
        "flags",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("exchange_id", sa.String(64), sa.ForeignKey("exchanges.id"), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("reporter", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_by", sa.String(256), nullable=True),
    )
    op.create_index("ix_flags_exchange_id", "flags", ["exchange_id"])
    op.create_index("ix_flags_tenant", "flags", ["tenant"])
    op.create_index("ix_flags_status", "flags", ["status"])
    op.create_table(
        "audit",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=False),
    )
    op.create_index("ix_audit_at", "audit", ["at"])
    op.create_index("ix_audit_tenant", "audit", ["tenant"])


def downgrade() -> None:
    for table in ("audit", "flags", "chain_heads", "exchanges", "conversations"):
        op.drop_table(table)
