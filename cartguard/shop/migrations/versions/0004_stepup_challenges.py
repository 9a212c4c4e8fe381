"""stepup_challenges: a step-up code is expected in this conversation (the edge reads it)

Revision ID: 0004_stepup_challenges
Revises: 0003_audit_head_staff_sessions
Create Date: 2026-12-02 12:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_stepup_challenges"
down_revision = "0003_audit_head_staff_sessions"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stepup_challenges",
        sa.Column("conversation_id", sa.String(length=64), nullable=False),
        sa.Column("customer_id", sa.Integer(), nullable=False),
        sa.Column("asked_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["customer_id"], ["customers.id"]),
        sa.PrimaryKeyConstraint("conversation_id"),
    )
    with op.batch_alter_table("stepup_challenges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_stepup_challenges_customer_id"), ["customer_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_stepup_challenges_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("stepup_challenges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stepup_challenges_expires_at"))
        batch_op.drop_index(batch_op.f("ix_stepup_challenges_customer_id"))
    op.drop_table("stepup_challenges")
