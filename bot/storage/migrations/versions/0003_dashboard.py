"""Dashboard: moderator accounts and sessions, and redactions of exchange text.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "redactions",
        sa.Column("exchange_id", sa.String(64), sa.ForeignKey("exchanges.id"), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("redacted_by", sa.String(256), nullable=False),
        sa.Column("redacted_at", sa.DateTime(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
    )
    op.create_index("ix_redactions_tenant", "redactions", ["tenant"])
    op.create_table(
        "moderators",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("password_hash", sa.String(512), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("tenants", sa.JSON(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("password_changed", sa.DateTime(), nullable=False),
    )
    op.create_table(
        "moderator_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("moderator_id", sa.Integer(), sa.ForeignKey("moderators.id"), nullable=False),
        sa.Column("csrf_token", sa.String(128), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("last_seen", sa.DateTime(), nullable=False),
        sa.Column("expires", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_moderator_sessions_moderator_id", "moderator_sessions", ["moderator_id"])
    op.create_index("ix_moderator_sessions_expires", "moderator_sessions", ["expires"])


def downgrade() -> None:
    op.drop_table("moderator_sessions")
    op.drop_table("moderators")
    op.drop_table("redactions")
