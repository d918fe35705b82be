"""insider-leak guard counters, security alerts, export approval, security officer role

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 19:25:06.779273
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from alembic.util import CommandError

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


ROLES_OLD = ["system_admin", "org_admin", "staff", "analyst", "auditor", "member"]
ROLES_NEW = [*ROLES_OLD[:5], "security_officer", "member"]


def upgrade() -> None:
    op.create_table(
        "access_counter",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=24), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("records", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_access_counter")),
        sa.UniqueConstraint(
            "user_id", "hour", "kind", name=op.f("uq_access_counter_user_id_hour_kind")
        ),
    )
    with op.batch_alter_table("access_counter", schema=None) as batch_op:
        batch_op.create_index("ix_access_counter_role_day", ["role", "day"], unique=False)

    op.create_table(
        "export_request",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("requested_by", sa.Integer(), nullable=False),
        sa.Column("dataset", sa.String(length=24), nullable=False),
        sa.Column("org_id", sa.Integer(), nullable=False),
        sa.Column("filters", sa.JSON(), nullable=False),
        sa.Column("file_format", sa.String(length=8), nullable=False),
        sa.Column("unmasked", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.String(length=300), nullable=False),
        sa.Column("record_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=12), nullable=False),
        sa.Column("decided_by", sa.Integer(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision_note", sa.String(length=300), nullable=False),
        sa.Column("downloaded_at", sa.DateTime(timezone=True), nullable=True),
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
            ["decided_by"], ["app_user.id"], name=op.f("fk_export_request_decided_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["org_id"], ["union_org.id"], name=op.f("fk_export_request_org_id_union_org")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by"], ["app_user.id"], name=op.f("fk_export_request_requested_by_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_export_request")),
        sa.UniqueConstraint("uid", name=op.f("uq_export_request_uid")),
    )
    with op.batch_alter_table("export_request", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_export_request_requested_by"), ["requested_by"], unique=False
        )

    op.create_table(
        "security_alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=24), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("message", sa.String(length=300), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("resolved_by", sa.Integer(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolution", sa.String(length=300), nullable=False),
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
            ["resolved_by"], ["app_user.id"], name=op.f("fk_security_alert_resolved_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_security_alert_user_id_app_user")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_security_alert")),
    )
    with op.batch_alter_table("security_alert", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_security_alert_user_id"), ["user_id"], unique=False)

    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.add_column(sa.Column("suspended_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("suspended_reason", sa.String(length=200), server_default="", nullable=False)
        )
        # New role security_officer: the role CHECK constraint lists the allowed values.
        batch_op.drop_constraint(op.f("ck_app_user_role"), type_="check")
        batch_op.create_check_constraint("role", sa.column("role").in_(ROLES_NEW))


def _refuse(checks: list[tuple[str, str]]) -> None:
    """Before touching anything: stop, in one line (alembic prints ``FAILED: …``), when the
    older schema cannot hold what the database has."""
    bind = op.get_bind()
    for sql, why in checks:
        count = bind.execute(sa.text(sql)).scalar() or 0
        if count:
            raise CommandError(f"downgrade below {revision} refused: {why.format(n=count)}")


def downgrade() -> None:
    # access_counter is dropped with its rows: hourly read counts, which the guard rebuilds.
    _refuse(
        [
            (
                "SELECT count(*) FROM app_user WHERE role = 'security_officer'",
                "{n} accounts have the role security_officer, which the older schema does not "
                "know: change their role first",
            ),
            (
                "SELECT count(*) FROM app_user WHERE suspended_at IS NOT NULL",
                "{n} accounts are suspended by the insider guard; the older schema would "
                "silently reinstate them",
            ),
            (
                "SELECT (SELECT count(*) FROM export_request) + (SELECT count(*) FROM "
                "security_alert)",
                "{n} export requests and security alerts would be deleted",
            ),
        ]
    )
    with op.batch_alter_table("app_user", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_app_user_role"), type_="check")
        batch_op.create_check_constraint("role", sa.column("role").in_(ROLES_OLD))
        batch_op.drop_column("suspended_reason")
        batch_op.drop_column("suspended_at")

    with op.batch_alter_table("security_alert", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_security_alert_user_id"))

    op.drop_table("security_alert")
    with op.batch_alter_table("export_request", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_request_requested_by"))

    op.drop_table("export_request")
    with op.batch_alter_table("access_counter", schema=None) as batch_op:
        batch_op.drop_index("ix_access_counter_role_day")

    op.drop_table("access_counter")
