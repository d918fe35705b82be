"""The audit trail for auditors (``/console/audit``).

It searches the trail through :mod:`smartunion.security.audit_search` (scoped, and itself
audited as ``audit.view``) and can verify the whole chain against the external checkpoints.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Query, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from smartunion.security import audit, audit_search
from smartunion.security.models import AuditEvent
from smartunion.security.permissions import Permission, Role
from smartunion.web.deps import ClientIp, DbSession
from smartunion.web.pagekit import (
    PAGE_SIZES,
    ConsolePage,
    Page,
    Pager,
    caller,
    compact_json,
    local_time,
    page_number,
    page_router,
    page_size,
)

router = page_router()

# Actions that have a label in the catalogs ("audit.action.<action>"); others show raw.
LABELLED_ACTIONS = (
    "audit.verify",
    "audit.view",
    "auth.login",
    "auth.totp_enrol",
    "auth.totp_reset",
    "backup.create",
    "backup.restore",
    "consent.grant",
    "consent.withdraw",
    "enterprise.create",
    "enterprise.update",
    "export.approve",
    "export.download",
    "export.reject",
    "export.request",
    "member.anonymise",
    "member.create",
    "member.list",
    "member.lookup",
    "member.read",
    "member.reveal",
    "member.self_export",
    "member.update",
    "org.create",
    "org.update",
    "privacy.correction_request",
    "privacy.deletion_request",
    "privacy.purge",
    "privacy.request_resolve",
    "security.alert",
    "security.alert_resolve",
    "security.suspend",
    "security.unsuspend",
    "stats.release_dp",
    "user.activate",
    "user.create",
    "user.deactivate",
    "user.list",
    "user.role_change",
)
OUTCOMES = ("ok", "failed", "denied", "otp_needed", "enrol_needed")
FILTER_MAX = 64


def action_label(page: Page, action: str) -> str:
    key = f"audit.action.{action}"
    return page.t(key) if page.t.has(key) else action


def role_label(page: Page, value: str) -> str:
    try:
        return page.t.enum(Role(value))
    except ValueError:
        return value or "—"


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    time: str
    role: str
    action: str
    outcome: str
    details: str


def _rows(page: Page, events: list[AuditEvent]) -> list[AuditRow]:
    t = page.t
    return [
        AuditRow(
            event=e,
            time=local_time(e.occurred_at),
            role=role_label(page, e.actor_role),
            action=action_label(page, e.action),
            outcome=t(f"audit.outcome.{e.outcome}") if e.outcome in OUTCOMES else e.outcome,
            details=compact_json(e.details),
        )
        for e in events
    ]


def _date(value: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(value.strip()) if value.strip() else None
    except ValueError:
        return None  # junk in a date box means "no bound", like other page filters


@dataclass(frozen=True)
class VerifyResult:
    checked: int
    broken_at: int | None
    reason: str
    checkpoints: int
    checkpoint_file_damaged: bool = False

    @property
    def intact(self) -> bool:
        return self.broken_at is None and not self.checkpoint_file_damaged


def _audit_page(
    page: Page,
    session: Session,
    ip: str,
    query: audit_search.AuditQuery,
    *,
    verify: VerifyResult | None = None,
) -> HTMLResponse:
    principal = caller(page)
    events, total = audit_search.search(session, principal, query, client_ip=ip)
    params: dict[str, Any] = {
        "action": query.action,
        "actor": query.actor,
        "object_type": query.object_type,
        "object_id": query.object_id,
        "since": query.since.isoformat() if query.since else "",
        "until": query.until.isoformat() if query.until else "",
    }
    return page.render(
        "console/audit.html",
        rows=_rows(page, list(events)),
        query=query,
        params=params,
        pager=Pager("/console/audit", params, query.page, query.size, total),
        page_sizes=PAGE_SIZES,
        actions=[(a, action_label(page, a)) for a in LABELLED_ACTIONS],
        verify=verify,
        nav="audit",
    )


@router.get("/console/audit")
def audit_trail(
    page: ConsolePage,
    session: DbSession,
    ip: ClientIp,
    action: Annotated[str, Query(max_length=FILTER_MAX)] = "",
    actor: Annotated[str, Query(max_length=FILTER_MAX)] = "",
    object_type: Annotated[str, Query(max_length=FILTER_MAX)] = "",
    object_id: Annotated[str, Query(max_length=FILTER_MAX)] = "",
    since: Annotated[str, Query(max_length=10)] = "",
    until: Annotated[str, Query(max_length=10)] = "",
    page_no: Annotated[str, Query(alias="page")] = "",
    size: str = "",
) -> Response:
    query = audit_search.AuditQuery(
        action=action.strip(),
        actor=actor.strip(),
        object_type=object_type.strip(),
        object_id=object_id.strip(),
        since=_date(since),
        until=_date(until),
        page=page_number(page_no),
        size=page_size(size),
    )
    return _audit_page(page, session, ip, query)


@router.post("/console/audit/verify")
def audit_verify(
    page: ConsolePage,
    session: DbSession,
    ip: ClientIp,
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Walk the whole chain now; the result is shown once and recorded as ``audit.verify``."""
    page.check_csrf(csrf_token)
    principal = caller(page)
    principal.require(Permission.AUDIT_READ)
    state = page.state
    key = state.crypto.ring.audit_key
    damaged = False
    try:
        checkpoints = audit.read_checkpoints(state.settings.audit_checkpoint_file, key)
    except ValueError:
        # A forged or damaged checkpoint line is itself a finding; verify the chain anyway.
        checkpoints, damaged = [], True
    checked, broken = audit.verify_chain(session, key, checkpoints=checkpoints)
    result = VerifyResult(
        checked=checked,
        broken_at=broken.event_id if broken else None,
        reason=broken.reason if broken else "",
        checkpoints=len(checkpoints),
        checkpoint_file_damaged=damaged,
    )
    audit.record(
        session,
        principal,
        "audit.verify",
        object_type="audit",
        outcome="ok" if result.intact else "failed",
        details={
            "checked": checked,
            "broken_at": result.broken_at,
            "checkpoints": len(checkpoints),
            "checkpoint_file_damaged": damaged,
        },
        client_ip=ip,
    )
    return _audit_page(
        page, session, ip, audit_search.AuditQuery(size=PAGE_SIZES[0]), verify=result
    )
