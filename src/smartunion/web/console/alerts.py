"""The insider-leak guard's alerts for security officers (``/console/security/alerts``),
listed and resolved through :mod:`smartunion.security.alerts`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from smartunion.security import alerts
from smartunion.security.models import SecurityAlert
from smartunion.security.permissions import Permission
from smartunion.web.deps import DbSession
from smartunion.web.pagekit import (
    ConsolePage,
    Page,
    RecordId,
    caller,
    opt_int,
    page_router,
    query_url,
)

ALERT_KINDS = ("bulk_read", "bulk_read_suspended", "off_hours", "quota", "reveals")

router = page_router()


def alert_kind_label(page: Page, kind: str) -> str:
    return page.t(f"alerts.kind.{kind}") if kind in ALERT_KINDS else kind


def alert_text(page: Page, alert: SecurityAlert) -> str:
    """What happened, in a sentence of the page's language ("alerts.say.<kind>" filled with
    the alert's numbers); the guard's stored message when the numbers are not all there."""
    details = alert.details or {}
    if alert.kind in ALERT_KINDS:
        text = page.t(f"alerts.say.{alert.kind}", **details)
        if "{" not in text:  # every placeholder filled
            return text
    return alert.message


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
    principal = caller(page)
    rows = alerts.list_alerts(session, principal, open_only=not show_all)
    return page.render(
        "console/alerts.html",
        status_code=status_code,
        rows=[
            {
                "alert": a,
                "username": username,
                "kind": alert_kind_label(page, a.kind),
                "text": alert_text(page, a),
            }
            for a, username in rows
        ],
        show_all=show_all,
        resolved=resolved,
        error=error,
        error_alert=error_alert,
        toggle_url=query_url("/console/security/alerts", {"all": None if show_all else 1}),
        nav="alerts",
    )


@router.get("/console/security/alerts")
def alert_list(
    page: ConsolePage,
    session: DbSession,
    show_all: Annotated[str, Query(alias="all", max_length=1)] = "",
    resolved: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    return _alerts_page(page, session, show_all=show_all == "1", resolved=opt_int(resolved))


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
    principal = caller(page)
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
