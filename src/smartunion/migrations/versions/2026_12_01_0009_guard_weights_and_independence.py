"""guard by exposure, officer allowances, and who made or changed an account

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("app_user") as batch:
        batch.add_column(
            sa.Column("guard_allowance", sa.Integer(), server_default="0", nullable=False)
        )
        batch.add_column(
            sa.Column("guard_allowance_until", sa.DateTime(timezone=True), nullable=True)
        )
        batch.add_column(sa.Column("created_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("role_changed_by_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("org_changed_by_id", sa.Integer(), nullable=True))
    # The guard used to count list rows and details together as "read": they were mostly
    # list rows, which is what they become.
    op.execute("UPDATE access_counter SET kind = 'list' WHERE kind = 'read'")


def downgrade() -> None:
    op.execute("UPDATE access_counter SET kind = 'read' WHERE kind IN ('list', 'detail')")
    with op.batch_alter_table("app_user") as batch:
        batch.drop_column("org_changed_by_id")
        batch.drop_column("role_changed_by_id")
        batch.drop_column("created_by_id")
        batch.drop_column("guard_allowance_until")
        batch.drop_column("guard_allowance")
