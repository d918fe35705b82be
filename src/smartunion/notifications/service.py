"""Writing and reading members' notifications."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartunion.notifications.models import Notification
from smartunion.security.permissions import Permission
from smartunion.security.principal import PermissionDenied, Principal


class NoticeKind(StrEnum):
    # An account that acts as this member was opened (by the operator, on the server).
    ACCOUNT_CREATED = "account.created"
    # A member account opened by staff was switched off (staff knew its password).
    ACCOUNT_DISABLED_STAFF_MADE = "account.disabled_staff_made"
    # The password of the member's account was set by the operator.
    PASSWORD_SET = "account.password_set"  # noqa: S105  # nosec B105 (a notice kind)


def notify(
    session: Session, member_id: int, kind: NoticeKind, params: dict[str, Any] | None = None
) -> Notification:
    """Queue a notice for a member, in the caller's transaction (it commits with the change
    it reports, or not at all)."""
    notice = Notification(member_id=member_id, kind=str(kind), params=params or {})
    session.add(notice)
    session.flush()
    return notice


def for_member(session: Session, principal: Principal) -> Sequence[Notification]:
    """The caller's own notices, newest first (members only: a notice is theirs alone)."""
    principal.require(Permission.SELF_READ)
    if principal.member_id is None:
        raise PermissionDenied(Permission.SELF_READ)
    return session.scalars(
        select(Notification)
        .where(Notification.member_id == principal.member_id)
        .order_by(Notification.id.desc())
        .limit(100)
    ).all()
