"""Console pages for auditors and security officers: the audit trail and security alerts.

``/console/audit`` searches the trail through :mod:`smartunion.security.audit_search`
(scoped, and itself audited as ``audit.view``) and can verify the whole chain against the
external checkpoints. ``/console/security/alerts`` lists and resolves the insider-leak
guard's alerts through :mod:`smartunion.security.alerts`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Form, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from smartunion.security import alerts, audit, audit_search
from smartunion.security.models import AuditEvent
from smartunion.security.permissions import Permission, Role
from smartunion.web.deps import ClientIp, DbSession
from smartunion.web.pages import (
    PAGE_SIZES,
    ConsolePage,
    Page,
    Pager,
    RecordId,
    _caller,
    _opt_int,
    _page_no,
    _page_size,
    _query,
    compact_json,
    local_time,
    router,
)

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
ALERT_KINDS = ("bulk_read", "bulk_read_suspended", "off_hours", "quota", "reveals")
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
    principal = _caller(page)
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
        page=_page_no(page_no),
        size=_page_size(size),
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
    principal = _caller(page)
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


# ---------------------------------------------------------------------------------------
# Security officer: alerts


def alert_kind_label(page: Page, kind: str) -> str:
    return page.t(f"alerts.kind.{kind}") if kind in ALERT_KINDS else kind


def _alerts_page(
    page: Page,
    session: Session,
    *,
    show_all: bool,
    resolved: int | None = None,
    error: str | None = None,
    error_alert: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    principal = _caller(page)
    rows = alerts.list_alerts(session, principal, open_only=not show_all)
    return page.render(
        "console/alerts.html",
        status_code=status_code,
        rows=[
            {
                "alert": a,
                "username": username,
                "kind": alert_kind_label(page, a.kind),
                "details": compact_json(a.details),
            }
            for a, username in rows
        ],
        show_all=show_all,
        resolved=resolved,
        error=error,
        error_alert=error_alert,
        toggle_url=_query("/console/security/alerts", {"all": None if show_all else 1}),
        nav="alerts",
    )


@router.get("/console/security/alerts")
def alert_list(
    page: ConsolePage,
    session: DbSession,
    show_all: Annotated[str, Query(alias="all", max_length=1)] = "",
    resolved: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    return _alerts_page(page, session, show_all=show_all == "1", resolved=_opt_int(resolved))


@router.post("/console/security/alerts/{alert_id}/resolve")
def alert_resolve(
    alert_id: RecordId,
    page: ConsolePage,
    session: DbSession,
    note: Annotated[str, Form(max_length=300)] = "",
    lift_suspension: Annotated[str, Form(max_length=4)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    principal = _caller(page)
    note = note.strip()
    if len(note) < 2:
        # The same rule as the API (2–300 characters): a resolution must say something.
        principal.require(Permission.SECURITY_ALERTS)
        return _alerts_page(
            page,
            session,
            show_all=False,
            error="alerts.error.note",
            error_alert=alert_id,
            status_code=422,
        )
    alerts.resolve(session, principal, alert_id, note=note, lift_suspension=lift_suspension == "1")
    return RedirectResponse(f"/console/security/alerts?resolved={alert_id}", status_code=303)
