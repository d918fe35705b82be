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

from smartunion import i18n
from smartunion.security import audit, audit_search
from smartunion.security.models import AuditEvent
from smartunion.security.permissions import Permission
from smartunion.web.deps import ClientIp, DbSession
from smartunion.web.labels import action_label, role_label
from smartunion.web.pagekit import (
    PAGE_SIZES,
    ConsolePage,
    Page,
    Pager,
    caller,
    local_time,
    page_number,
    page_router,
    page_size,
)

router = page_router()

# Every action the code records, each named in the catalogs ("audit.action.<action>");
# tests/web/test_console_pages.py reads the source and fails when one is missing here.
LABELLED_ACTIONS = (
    "access.not_found",
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
    "keys.rotate.done",
    "keys.rotate.start",
    "member.anonymise",
    "member.create",
    "member.exists",
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
    "privacy.requests_view",
    "security.alert",
    "security.alert_resolve",
    "security.allowance",
    "security.suspend",
    "security.unsuspend",
    "stats.query",
    "stats.release_dp",
    "user.activate",
    "user.create",
    "user.deactivate",
    "user.list",
    "user.password_change",
    "user.password_reset",
    "user.role_change",
)
# The action filter's groups: the part before the first dot ("audit.group.<prefix>").
ACTION_GROUPS = tuple(dict.fromkeys(a.split(".", 1)[0] for a in LABELLED_ACTIONS))
# Object types the code records ("audit.object.<type>").
OBJECT_TYPES = (
    "alert",
    "audit",
    "backup",
    "enterprise",
    "export",
    "keys",
    "member",
    "org",
    "stats",
    "subject_request",
    "user",
)
# Events the insider-leak guard writes in the name of the user it watches: shown as done
# by the guard to that user, not by the user.
GUARD_ACTIONS = frozenset({"security.alert", "security.suspend"})
OUTCOMES = ("ok", "failed", "denied", "otp_needed", "enrol_needed", "not_found", "conflict")
FILTER_MAX = 64
MAX_LISTED_IDS = 10


def object_label(t: i18n.Translator, object_type: str) -> str:
    key = f"audit.object.{object_type}"
    return t(key) if t.has(key) else object_type


def _label(t: i18n.Translator, prefix: str, value: str) -> str:
    key = f"{prefix}.{value}"
    return t(key) if t.has(key) else value


def _value(t: i18n.Translator, action: str, key: str, value: Any) -> str:
    """One detail value as words: labels for codes, 是/否 for flags, lists joined."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return t("common.yes") if value else t("common.no")
    if isinstance(value, dict):
        return "；".join(f"{k}：{v}" for k, v in detail_items(t, action, value))
    if isinstance(value, list):
        if key == "ids":
            shown = "、".join(f"#{v}" for v in value[:MAX_LISTED_IDS])
            more = len(value) - MAX_LISTED_IDS
            return shown + (t("audit.detail.more", n=more) if more > 0 else "")
        return "、".join(_value(t, action, key, v) for v in value) or "—"
    text = str(value)
    if key in ("fields", "field", "by"):
        return _label(t, "field", text)
    if key == "role" or (action == "user.role_change" and key in ("from", "to")):
        return role_label(t, text)
    if key == "severity":
        return _label(t, "alerts.severity", text)
    if key == "kind" and action == "security.alert":
        return _label(t, "alerts.kind", text)
    if key == "kind" and action.startswith("privacy."):
        return _label(t, "privacy.kind", text)
    if key == "purpose":
        return _label(t, "privacy.purpose", text)
    if key == "action":
        return _label(t, "audit.action", text)
    if key == "object_type":
        return object_label(t, text)
    return text


def detail_items(t: i18n.Translator, action: str, details: dict[str, Any]) -> list[tuple[str, str]]:
    """An event's details as (label, text) pairs in the page's language, not as JSON."""
    items = []
    for key in sorted(details or {}):
        if action == "user.role_change" and key in ("from", "to"):
            label = t(f"audit.detail.role_{key}")
        else:
            label = _label(t, "audit.detail", key)
        items.append((label, _value(t, action, key, details[key])))
    return items


@dataclass(frozen=True)
class AuditRow:
    event: AuditEvent
    time: str
    actor: str
    by_guard: bool
    role: str
    action: str
    object: str
    outcome: str
    details: list[tuple[str, str]]


def _object_text(t: i18n.Translator, e: AuditEvent, *, by_guard: bool) -> str:
    if not e.object_type:
        return "—"
    text = object_label(t, e.object_type)
    if by_guard and e.actor_username:
        text = f"{text} {e.actor_username}"  # the user the guard stopped
    return f"{text} #{e.object_id}" if e.object_id else text


def _rows(page: Page, events: list[AuditEvent]) -> list[AuditRow]:
    t = page.t
    rows = []
    for e in events:
        by_guard = e.action in GUARD_ACTIONS
        rows.append(
            AuditRow(
                event=e,
                time=local_time(e.occurred_at),
                actor=t("audit.actor.guard") if by_guard else (e.actor_username or "—"),
                by_guard=by_guard,
                role=t("audit.actor.system") if by_guard else role_label(t, e.actor_role),
                action=action_label(t, e.action),
                object=_object_text(t, e, by_guard=by_guard),
                outcome=t(f"audit.outcome.{e.outcome}") if e.outcome in OUTCOMES else e.outcome,
                details=detail_items(t, e.action, e.details or {}),
            )
        )
    return rows


def _action_choices(page: Page) -> list[tuple[str, list[tuple[str, str]]]]:
    """The action filter's list: per group, "all of the group" and then each action."""
    t = page.t
    groups = []
    for group in ACTION_GROUPS:
        name = _label(t, "audit.group", group)
        choices = [(f"{group}.", t("audit.f.all_of", group=name))]
        choices += [(a, action_label(t, a)) for a in LABELLED_ACTIONS if a.startswith(group + ".")]
        groups.append((name, choices))
    return groups


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
        action_groups=_action_choices(page),
        object_types=[(o, object_label(page.t, o)) for o in OBJECT_TYPES],
        known_actions={*LABELLED_ACTIONS, *(f"{g}." for g in ACTION_GROUPS)},
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
