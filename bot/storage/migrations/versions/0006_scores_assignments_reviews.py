"""Each exchange's best retrieval score (to sort by), who assigned a flag, reviewed down votes;
indexes for sorting by score and for the queue's counts.

`exchanges.top_score` is filled in for older rows from the passages they already store; rows
that retrieved nothing (greetings, rate limits...) keep NULL, which listings sort last.
`flags.assigned_by` stays NULL for older claims; a seal covers it only once it is set, so the
seals of older flags still hold (bot.storage.chain.SEALED_WHEN_SET).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_BATCH = 1000


def _best(retrieved: Any) -> float | None:
    items = json.loads(retrieved) if isinstance(retrieved, str) else retrieved
    scores = [float(i["score"]) for i in items or [] if i.get("score") is not None]
    return max(scores, default=None)


def upgrade() -> None:
    with op.batch_alter_table("exchanges") as batch:
        batch.add_column(sa.Column("top_score", sa.Float(), nullable=True))
        batch.create_index("ix_exchanges_tenant_top_score", ["tenant", "top_score"])
        # The queue's counts (open flags, votes not reviewed) on every page read ids from it.
        batch.create_index("ix_exchanges_tenant_id", ["tenant", "id"])
    with op.batch_alter_table("flags") as batch:
        batch.add_column(sa.Column("assigned_by", sa.String(256), nullable=True))
    op.create_table(
        "vote_reviews",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "exchange_id", sa.String(64), sa.ForeignKey("exchanges.id"), nullable=False, unique=True
        ),
        sa.Column("tenant", sa.String(128), nullable=False),
        sa.Column("reviewed_by", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("reviewed_at", sa.DateTime(), nullable=False),
        sa.Column("seal", sa.String(64), nullable=True),
        sa.Column("key_id", sa.String(16), nullable=False, server_default=""),
    )
    op.create_index("ix_vote_reviews_tenant", "vote_reviews", ["tenant"])

    bind = op.get_bind()
    exchanges = sa.table(
        "exchanges",
        sa.column("id", sa.String),
        sa.column("retrieved", sa.JSON),
        sa.column("top_score", sa.Float),
    )
    last = ""
    while True:
        rows = bind.execute(
            sa.select(exchanges.c.id, exchanges.c.retrieved)
            .where(exchanges.c.id > last)
            .order_by(exchanges.c.id)
            .limit(_BATCH)
        ).all()
        scored = [
            {"key": row.id, "score": best}
            for row in rows
            if (best := _best(row.retrieved)) is not None
        ]
        if scored:
            bind.execute(
                exchanges.update()
                .where(exchanges.c.id == sa.bindparam("key"))
                .values(top_score=sa.bindparam("score")),
                scored,
            )
        if len(rows) < _BATCH:
            return
        last = rows[-1].id


def downgrade() -> None:
    op.drop_index("ix_vote_reviews_tenant", "vote_reviews")
    op.drop_table("vote_reviews")
    with op.batch_alter_table("flags") as batch:
        batch.drop_column("assigned_by")
    with op.batch_alter_table("exchanges") as batch:
        batch.drop_index("ix_exchanges_tenant_id")
        batch.drop_index("ix_exchanges_tenant_top_score")
        batch.drop_column("top_score")
