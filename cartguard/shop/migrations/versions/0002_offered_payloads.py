"""offered_payloads: button payloads the bot offered, so the channels accept their taps

Revision ID: 0002_offered_payloads
Revises: 0001
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_offered_payloads"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "offered_payloads",
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("payload_digest", sa.String(length=64), nullable=False),
        sa.Column("offered_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("conversation_id", "payload_digest"),
    )
    with op.batch_alter_table("offered_payloads", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_offered_payloads_offered_at"), ["offered_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("offered_payloads", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_offered_payloads_offered_at"))
    op.drop_table("offered_payloads")
