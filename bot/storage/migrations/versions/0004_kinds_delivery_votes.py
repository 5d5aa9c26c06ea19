"""Reply kinds, the platform's raw message, delivery and jump links, votes, flag claims, saved filters.

Old exchanges get `kind` from `refused` and `hash_version` 1 (their content hash predates `kind`
and `raw_text`); new rows are hashed with version 2, which covers both.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("exchanges") as batch:
        batch.add_column(sa.Column("kind", sa.String(32), nullable=True))
        batch.add_column(sa.Column("raw_text", sa.Text(), nullable=True))
        batch.add_column(sa.Column("platform_message_id", sa.String(128), nullable=True))
        batch.add_column(sa.Column("permalink", sa.String(1024), nullable=True))
        batch.add_column(sa.Column("delivery", sa.String(512), nullable=False, server_default=""))
        batch.add_column(
            sa.Column("hash_version", sa.Integer(), nullable=False, server_default="1")
        )
    exchanges = sa.table(
        "exchanges", sa.column("kind", sa.String), sa.column("refused", sa.Boolean)
    )
    op.execute(
        exchanges.update().values(
            kind=sa.case((exchanges.c.refused, "out_of_scope"), else_="answer")
        )
    )
    with op.batch_alter_table("exchanges") as batch:
        batch.alter_column("kind", existing_type=sa.String(32), nullable=False)
        batch.create_index("ix_exchanges_kind", ["kind"])

    with op.batch_alter_table("flags") as batch:
        batch.add_column(sa.Column("assignee", sa.String(256), nullable=True))
        batch.add_column(sa.Column("claimed_at", sa.DateTime(), nullable=True))

    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("exchange_id", sa.String(64), sa.ForeignKey("exchanges.id"), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("voter", sa.String(256), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("exchange_id", "voter"),
        sa.CheckConstraint("value IN (1, -1)", name="ck_votes_value"),
    )
    op.create_index("ix_votes_exchange_id", "votes", ["exchange_id"])
    op.create_index("ix_votes_tenant", "votes", ["tenant"])
    op.create_index("ix_votes_voter", "votes", ["voter"])

    op.create_table(
        "saved_filters",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("moderator", sa.String(128), nullable=False),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("query", sa.Text(), nullable=False),
        sa.Column("created", sa.DateTime(), nullable=False),
        sa.Column("updated", sa.DateTime(), nullable=False),
        sa.UniqueConstraint("moderator", "name"),
    )
    op.create_index("ix_saved_filters_moderator", "saved_filters", ["moderator"])


def downgrade() -> None:
    op.drop_table("saved_filters")
    op.drop_table("votes")
    with op.batch_alter_table("flags") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("assignee")
    with op.batch_alter_table("exchanges") as batch:
        batch.drop_index("ix_exchanges_kind")
        for name in (
            "hash_version",
            "delivery",
            "permalink",
            "platform_message_id",
            "raw_text",
            "kind",
        ):
            batch.drop_column(name)
