"""PIPL rights: subject requests, member anonymisation and leaving date

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27 19:39:57.287402
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "subject_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("field", sa.String(length=40), nullable=False),
        sa.Column("note_enc", sa.LargeBinary(), nullable=True),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("handled_by", sa.Integer(), nullable=True),
        sa.Column("handled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response", sa.String(length=300), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["handled_by"], ["app_user.id"], name=op.f("fk_subject_request_handled_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["member_id"], ["member.id"], name=op.f("fk_subject_request_member_id_member")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["union_org.id"], name=op.f("fk_subject_request_org_id_union_org")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subject_request")),
    )
    with op.batch_alter_table("subject_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_subject_request_member_id"), ["member_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_subject_request_org_id"), ["org_id"], unique=False)

    with op.batch_alter_table("member", schema=None) as batch_op:
        batch_op.add_column(sa.Column("left_at", sa.Date(), nullable=True))
        batch_op.add_column(sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=True))


def _refuse(checks: list[tuple[str, str]]) -> None:
    """Before touching anything: stop, in one line (alembic prints ``FAILED: …``), when the
    older schema cannot hold what the database has."""
    bind = op.get_bind()
    for sql, why in checks:
        count = bind.execute(sa.text(sql)).scalar() or 0
        if count:
            raise CommandError(f"downgrade below {revision} refused: {why.format(n=count)}")


def downgrade() -> None:
    _refuse(
        [
            (
                "SELECT count(*) FROM subject_request",
                "{n} PIPL rights requests would be deleted",
            ),
            (
                "SELECT count(*) FROM member WHERE left_at IS NOT NULL OR anonymised_at IS NOT NULL",
                "{n} members have a leaving or anonymisation date the older schema cannot hold",
            ),
        ]
    )
    # Not through a batch copy of member on SQLite: rebuilding a table other tables point at
    # fails their foreign keys (SQLite >= 3.35 drops a column in place).
    op.drop_column("member", "anonymised_at")
    op.drop_column("member", "left_at")

    with op.batch_alter_table("subject_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subject_request_org_id"))
        batch_op.drop_index(batch_op.f("ix_subject_request_member_id"))

    op.drop_table("subject_request")
