"""member notifications; member accounts opened by staff are switched off

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-01 13:00:00

Until now an org admin could open a member-role account linked to any member in scope,
with a password of their choosing, and act as that member (read their plaintext, grant
consents, ask for deletion). Such an account cannot be trusted: the staff who opened it
know its password. This revision finds every member account whose ``user.create`` audit
event names a staff actor (accounts made by the operator's CLI have none), deactivates it,
revokes its sessions and tokens, and leaves the member a notice. The operator reissues an
account on the server (``smartunion users set-password --activate``) once the member asks.

A migration holds no key, so it cannot append sealed audit events: the notices
(``notification.kind = 'account.disabled_staff_made'``) are the record of what it did.
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "notification",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("channel", sa.String(length=12), server_default="portal", nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("read_at", sa.DateTime(timezone=True), nullable=True),
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
            ["member_id"], ["member.id"], name=op.f("fk_notification_member_id_member")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notification")),
    )
    op.create_index(op.f("ix_notification_member_id"), "notification", ["member_id"], unique=False)
    _disable_staff_made_member_accounts()


def _disable_staff_made_member_accounts() -> None:
    conn = op.get_bind()
    user = sa.table(
        "app_user",
        sa.column("id", sa.Integer),
        sa.column("role", sa.String),
        sa.column("member_id", sa.Integer),
        sa.column("is_active", sa.Boolean),
    )
    event = sa.table(
        "audit_event",
        sa.column("action", sa.String),
        sa.column("object_type", sa.String),
        sa.column("object_id", sa.String),
        sa.column("actor_user_id", sa.Integer),
    )
    made_by_staff = {
        row.object_id
        for row in conn.execute(
            sa.select(event.c.object_id).where(
                event.c.action == "user.create",
                event.c.object_type == "user",
                event.c.actor_user_id.is_not(None),
            )
        )
    }
    accounts = [
        row
        for row in conn.execute(
            sa.select(user.c.id, user.c.member_id).where(
                user.c.role == "member", user.c.member_id.is_not(None), user.c.is_active
            )
        )
        if str(row.id) in made_by_staff
    ]
    if not accounts:
        return
    ids = [row.id for row in accounts]
    now = sa.func.current_timestamp()
    conn.execute(sa.update(user).where(user.c.id.in_(ids)).values(is_active=False))
    session = sa.table(
        "auth_session",
        sa.column("user_id", sa.Integer),
        sa.column("revoked_at", sa.DateTime(timezone=True)),
    )
    conn.execute(
        sa.update(session)
        .where(session.c.user_id.in_(ids), session.c.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    notice = sa.table(
        "notification",
        sa.column("member_id", sa.Integer),
        sa.column("kind", sa.String),
        sa.column("params", sa.JSON),
        sa.column("channel", sa.String),
    )
    rows: list[dict[str, Any]] = [
        {
            "member_id": row.member_id,
            "kind": "account.disabled_staff_made",
            "params": {"user_id": row.id},
            "channel": "portal",
        }
        for row in accounts
    ]
    conn.execute(sa.insert(notice), rows)


def downgrade() -> None:
    # The deactivated accounts stay deactivated: reopening them would hand them back to
    # whoever knew their password.
    op.drop_index(op.f("ix_notification_member_id"), table_name="notification")
    op.drop_table("notification")
