"""Keyed seals on every table moderators rely on, the audit trail's chain, erasure markers.

Rows stored before this revision have no seal; `personabot logs verify` says so until
`personabot logs rekey` has checked them the old way and sealed them (docs/moderation-log.md).

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SEALED = ("exchanges", "tombstones", "flags", "flag_notes", "votes", "bans", "audit", "redactions")


def _seal_columns() -> list[sa.Column[str]]:
    return [
        sa.Column("seal", sa.String(64), nullable=True),
        sa.Column("key_id", sa.String(16), nullable=False, server_default=""),
    ]


def upgrade() -> None:
    for table in SEALED:
        with op.batch_alter_table(table) as batch:
            for column in _seal_columns():
                batch.add_column(column)
    with op.batch_alter_table("audit") as batch:
        for name in ("prev_hash", "content_hash", "row_hash"):
            batch.add_column(sa.Column(name, sa.String(64), nullable=True))
    op.create_table(
        "erasures",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("platform", sa.String(64), nullable=False),
        sa.Column("tenant", sa.String(128), nullable=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("erased_at", sa.DateTime(), nullable=False),
        *_seal_columns(),
    )
    op.create_index("ix_erasures_subject", "erasures", ["subject"])


def downgrade() -> None:
    op.drop_table("erasures")
    with op.batch_alter_table("audit") as batch:
        for name in ("row_hash", "content_hash", "prev_hash"):
            batch.drop_column(name)
    for table in reversed(SEALED):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("key_id")
            batch.drop_column("seal")
