"""Moderator notes, the ban list, and tombstones so purge and erasure keep the chain verifiable.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchanges") as batch:
        batch.add_column(sa.Column("erased_at", sa.DateTime(), nullable=True))
    op.create_table(
        "flag_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("flag_id", sa.Integer(), sa.ForeignKey("flags.id"), nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
    )
    op.create_index("ix_flag_notes_flag_id", "flag_notes", ["flag_id"])
    op.create_table(
        "bans",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("banned_by", sa.String(256), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("platform", "tenant", "user_id"),
    )
    op.create_index("ix_bans_tenant", "bans", ["tenant"])
    op.create_table(
        "tombstones",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("exchange_id", sa.String(64), nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("row_hash", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("removed_at", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("tenant", "seq"),
    )


def downgrade() -> None:
    op.drop_table("tombstones")
    op.drop_table("bans")
    op.drop_table("flag_notes")
    with op.batch_alter_table("exchanges") as batch:
        batch.drop_column("erased_at")
