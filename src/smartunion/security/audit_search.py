"""Searching the audit trail (审计查询) for auditors and security officers.

Scope: a reader sees events whose actor belongs to an organisation in their subtree, and
system events (no actor organisation: failed log-ins, CLI and retention jobs). An auditor
of one city therefore never reads what the staff of a sibling city did.

Every search is itself an audit event (``audit.view``) with the filters used: who looked at
whose trail is part of the trail.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from smartunion.security import audit
from smartunion.security.models import AuditEvent
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.security.scopes import scoped_org_ids

LOCAL_TZ = ZoneInfo("Asia/Shanghai")
MAX_PAGE_SIZE = 200
# Deep offsets make the database walk the whole trail; narrow the filters instead.
MAX_OFFSET = 100_000


@dataclass(frozen=True)
class AuditQuery:
    """Filters of one search. Dates are local (Asia/Shanghai) calendar days, inclusive."""

    action: str = ""  # exact action ("member.reveal") or a prefix ending in "." ("member.")
    actor: str = ""  # username, exact
    object_type: str = ""
    object_id: str = ""
    since: dt.date | None = None
    until: dt.date | None = None
    page: int = 1
    size: int = 50

    def filters(self) -> dict[str, Any]:
        """The filters that were set, for the ``audit.view`` event."""
        out = {k: v for k, v in asdict(self).items() if v not in ("", None)}
        for key in ("since", "until"):
            if key in out:
                out[key] = out[key].isoformat()
        return out


def _local_midnight_utc(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=LOCAL_TZ).astimezone(dt.UTC)


def _readable(principal: Principal) -> Select[AuditEvent]:
    principal.require(Permission.AUDIT_READ)
    return select(AuditEvent).where(
        or_(
            AuditEvent.actor_org_id.is_(None),
            AuditEvent.actor_org_id.in_(scoped_org_ids(principal)),
        )
    )


def _filtered(stmt: Select[AuditEvent], query: AuditQuery) -> Select[AuditEvent]:
    if query.action:
        if query.action.endswith("."):
            stmt = stmt.where(AuditEvent.action.startswith(query.action, autoescape=True))
        else:
            stmt = stmt.where(AuditEvent.action == query.action)
    if query.actor:
        stmt = stmt.where(AuditEvent.actor_username == query.actor)
    if query.object_type:
        stmt = stmt.where(AuditEvent.object_type == query.object_type)
    if query.object_id:
        stmt = stmt.where(AuditEvent.object_id == query.object_id)
    if query.since is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= _local_midnight_utc(query.since))
    if query.until is not None:
        end = _local_midnight_utc(query.until + dt.timedelta(days=1))
        stmt = stmt.where(AuditEvent.occurred_at < end)
    return stmt


def search(
    session: Session, principal: Principal, query: AuditQuery, *, client_ip: str = ""
) -> tuple[Sequence[AuditEvent], int]:
    """One page of matching events, newest first, and how many match in all."""
    stmt = _filtered(_readable(principal), query)
    total = session.scalar(select(func.count()).select_from(stmt.subquery())) or 0
    size = min(max(query.size, 1), MAX_PAGE_SIZE)
    offset = min((max(query.page, 1) - 1) * size, MAX_OFFSET)
    # Ordered by id, not time: ids are the chain order and never tie.
    rows = session.scalars(stmt.order_by(AuditEvent.id.desc()).offset(offset).limit(size)).all()
    audit.record(
        session,
        principal,
        "audit.view",
        object_type="audit",
        details={"filters": query.filters(), "total": total},
        client_ip=client_ip,
    )
    return rows, total
