"""audit seal algorithm: HMAC-SHA256 or HMAC-SM3 per event

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 19:16:17.951985
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("alg", sa.String(length=12), nullable=False, server_default="hmac-sha256")
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
                "SELECT count(*) FROM audit_event WHERE alg <> 'hmac-sha256'",
                "{n} audit events are sealed with HMAC-SM3, which the older schema cannot "
                "record (their chain would read as broken)",
            )
        ]
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_column("alg")
