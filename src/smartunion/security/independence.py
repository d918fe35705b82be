"""The second person of a two-person rule (双人复核) must be independent of the first.

An approval means something only if the approver could have said no on their own: so the
approver is not the requester, not whoever created the requester's account, not whoever last
changed its role or organisation (an administrator could otherwise make an account, act
through it, and approve it as themselves), holds the approval permission, and has the whole
scope of the data in theirs. Every two-person rule calls ``require_independent``: unmasked
and large exports today, hardship-aid approvals when they arrive.

Accounts from before these facts were recorded fall back to the audit trail's ``user.create``
and ``user.role_change`` events; an account whose maker is unknown in both is treated as made
by nobody in particular (the CLI on the server, which holds the key file anyway).
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartunion.errors import NotFound
from smartunion.orgs.models import UnionOrg
from smartunion.security.models import AuditEvent, User
from smartunion.security.permissions import Permission
from smartunion.security.principal import PermissionDenied, Principal


class NotIndependent(PermissionDenied):
    """The approver is the requester or stands behind the requester's account."""

    def __init__(self, permission: Permission, why: str) -> None:
        super().__init__(permission)
        self.why = why
        self.args = (f"permission {permission} needs an independent second person: {why}",)


def _from_audit(session: Session, user_id: int, actions: tuple[str, ...]) -> set[int]:
    actors = session.scalars(
        select(AuditEvent.actor_user_id).where(
            AuditEvent.object_type == "user",
            AuditEvent.object_id == str(user_id),
            AuditEvent.action.in_(actions),
        )
    )
    return {a for a in actors if a is not None}


def behind(session: Session, user_id: int) -> set[int]:
    """Users who made this account or last changed its role or organisation."""
    user = session.get(User, user_id)
    if user is None:
        return set()
    recorded = {user.created_by_id, user.role_changed_by_id, user.org_changed_by_id}
    people = {u for u in recorded if u is not None}
    if user.created_by_id is None:
        people |= _from_audit(session, user_id, ("user.create",))
    if user.role_changed_by_id is None:
        people |= _from_audit(session, user_id, ("user.role_change", "user.org_change"))
    return people


def require_independent(
    session: Session,
    approver: Principal,
    requester_id: int,
    *,
    permission: Permission,
    org_id: int,
) -> None:
    """Raise unless ``approver`` may be the second person for ``requester_id``'s request over
    the data of organisation ``org_id`` (and its subtree)."""
    approver.require(permission)
    if approver.user_id == requester_id:
        raise NotIndependent(permission, "the requester cannot approve their own request")
    if approver.user_id in behind(session, requester_id):
        raise NotIndependent(
            permission, "you created the requester's account or changed its role or organisation"
        )
    path = session.scalar(select(UnionOrg.path).where(UnionOrg.id == org_id))
    if path is None or not approver.covers_path(path):
        raise NotFound("organisation")
