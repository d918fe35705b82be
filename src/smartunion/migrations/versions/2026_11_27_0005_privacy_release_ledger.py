"""privacy release ledger: the differential-privacy budget per organisation

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 19:36:06.793574
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "privacy_release",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("query", sa.String(length=200), nullable=False),
        sa.Column("epsilon", sa.Float(), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["org_id"], ["union_org.id"], name=op.f("fk_privacy_release_org_id_union_org")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_privacy_release_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_privacy_release")),
    )
    with op.batch_alter_table("privacy_release", schema=None) as batch_op:
        batch_op.create_index(
            "ix_privacy_release_org_id_released_at", ["org_id", "released_at"], unique=False
        )


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
                "SELECT count(*) FROM privacy_release",
                "{n} entries of the differential-privacy ledger would be deleted (the budget "
                "spent would be forgotten)",
            )
        ]
    )
    with op.batch_alter_table("privacy_release", schema=None) as batch_op:
        batch_op.drop_index("ix_privacy_release_org_id_released_at")

    op.drop_table("privacy_release")
