"""audit: append with an own seal, chain after commit (no lock across requests)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00

Events already in the trail keep their chain: their position is their id. Ids were given by
the appender until now, so PostgreSQL's id sequence starts behind them: move it past.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("uid", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("mac", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("seq", sa.BigInteger(), nullable=True))
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=True)
        batch_op.create_unique_constraint(batch_op.f("uq_audit_event_uid"), ["uid"])
        batch_op.create_unique_constraint(batch_op.f("uq_audit_event_seq"), ["seq"])
    op.execute("UPDATE audit_event SET seq = id")
    op.create_index(
        "ix_audit_event_unsealed",
        "audit_event",
        ["id"],
        unique=False,
        sqlite_where=sa.text("seq IS NULL"),
        postgresql_where=sa.text("seq IS NULL"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('audit_event', 'id'), "
            "COALESCE((SELECT MAX(id) FROM audit_event), 0) + 1, false)"
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
                "SELECT count(*) FROM audit_event WHERE seq IS NULL",
                "{n} audit events are committed but not sealed yet: run `smartunion audit "
                "seal` first (the older schema chains every event as it is written)",
            ),
            (
                "SELECT count(*) FROM audit_event WHERE seq <> id",
                "{n} audit events are chained in another order than their ids (they committed "
                "out of order); the older schema chains by id and would read the chain as broken",
            ),
        ]
    )
    op.drop_index("ix_audit_event_unsealed", table_name="audit_event")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_audit_event_seq"), type_="unique")
        batch_op.drop_constraint(batch_op.f("uq_audit_event_uid"), type_="unique")
        batch_op.alter_column("hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.alter_column("prev_hash", existing_type=sa.String(length=64), nullable=False)
        batch_op.drop_column("seq")
        batch_op.drop_column("mac")
        batch_op.drop_column("uid")
