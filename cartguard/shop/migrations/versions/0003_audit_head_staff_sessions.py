"""audit_head + audit_log.seq (serialized, gap-free audit chain); staff_sessions

Revision ID: 0003_audit_head_staff_sessions
Revises: 0002_offered_payloads
Create Date: 2026-12-02 12:00:00

Existing audit entries are numbered 1, 2, 3... in id order; their HMACs were made before
sequence numbers existed, so the head row remembers the last of them (``legacy_until``) and
``cartguard audit verify`` checks those with the old format. The head row starts at the last
existing entry, so new entries continue that chain.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_audit_head_staff_sessions"
down_revision = "0002_offered_payloads"
branch_labels = None
depends_on = None

GENESIS = "0" * 64


def upgrade() -> None:
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("entry_hash", sa.String(length=64), nullable=False),
        sa.Column("legacy_until", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
    op.execute(
        "UPDATE audit_log SET seq = "
        "(SELECT count(*) FROM audit_log AS earlier WHERE earlier.id <= audit_log.id)"
    )
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.alter_column("seq", existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_log_seq"), ["seq"])

    connection = op.get_bind()
    last = connection.execute(
        sa.text("SELECT seq, entry_hash FROM audit_log ORDER BY seq DESC LIMIT 1")
    ).first()
    seq, digest = (int(last[0]), last[1]) if last else (0, GENESIS)
    op.bulk_insert(head, [{"id": 1, "seq": seq, "entry_hash": digest, "legacy_until": seq}])

    op.create_table(
        "staff_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=80), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_staff_sessions_name"), ["name"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("staff_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_staff_sessions_name"))
    op.drop_table("staff_sessions")
    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_log_seq"), type_="unique")
        batch_op.drop_column("seq")
    op.drop_table("audit_head")
