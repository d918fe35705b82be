"""The security officer's side of the guard: read alerts, resolve them, lift suspensions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from smartunion.db import utcnow
from smartunion.errors import NotFound
from smartunion.security import audit, guard
from smartunion.security.models import SecurityAlert, User
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.security.scopes import scoped_org_ids


def _readable(principal: Principal) -> Select[SecurityAlert]:
    users_in_scope = select(User.id).where(User.org_id.in_(scoped_org_ids(principal)))
    return select(SecurityAlert).where(SecurityAlert.user_id.in_(users_in_scope))


def list_alerts(
    session: Session, principal: Principal, *, open_only: bool = True, limit: int = 200
) -> Sequence[tuple[SecurityAlert, str]]:
    principal.require(Permission.SECURITY_ALERTS)
    stmt = _readable(principal)
    if open_only:
        stmt = stmt.where(SecurityAlert.resolved_at.is_(None))
    stmt = stmt.order_by(SecurityAlert.id.desc()).limit(limit)
    alerts = list(session.scalars(stmt))
    names: dict[int, str] = {}
    if alerts:
        ids = {a.user_id for a in alerts}
        query = select(User.id, User.username).where(User.id.in_(ids))
        names = {row.id: row.username for row in session.execute(query)}
    return [(a, names.get(a.user_id, "")) for a in alerts]


def resolve(
    session: Session,
    principal: Principal,
    alert_id: int,
    *,
    note: str,
    lift_suspension: bool,
    allowance: int | None = None,
    allowance_hours: int | None = None,
) -> SecurityAlert:
    """Resolve an alert; lifting a suspension also grants a recorded, time-limited
    allowance (``guard.grant_allowance``), so that the next page does not suspend again."""
    principal.require(Permission.SECURITY_ALERTS)
    alert = session.scalar(_readable(principal).where(SecurityAlert.id == alert_id))
    if alert is None:
        raise NotFound("alert")
    alert.resolved_by = principal.user_id
    alert.resolved_at = utcnow()
    alert.resolution = note[:300]
    if lift_suspension:
        user = session.get(User, alert.user_id)
        if user is not None and user.suspended_at is not None:
            user.suspended_at = None
            user.suspended_reason = ""
            audit.record(
                session,
                principal,
                "security.unsuspend",
                object_type="user",
                object_id=user.id,
                details={"alert_id": alert.id},
            )
            guard.grant_allowance(
                session, principal, user, points=allowance, hours=allowance_hours, reason=note
            )
    audit.record(
        session,
        principal,
        "security.alert_resolve",
        object_type="alert",
        object_id=alert.id,
        details={"lift_suspension": lift_suspension},
    )
    return alert
