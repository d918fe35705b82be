"""Console pages for exports of personal data (导出审批) over :mod:`smartunion.security.exports`.

The member list posts its current filters here to request an export; ``/console/exports``
lists the caller's requests and those awaiting their approval, with approve/reject forms
for approvers and a one-time download for the requester. Downloading is a POST with the
CSRF token, not a link: it spends the export and is charged to the daily quota, so another
site must not be able to trigger it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import Form, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

import smartunion.datasets  # noqa: F401  (registers the member dataset with the export guard)
from smartunion.errors import InvalidInput, NotFound
from smartunion.members import export as member_export
from smartunion.members import repository as member_repo
from smartunion.members.models import EmploymentForm, Gender, MemberStatus
from smartunion.security import exports, users
from smartunion.security.models import ExportRequest
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.web.console.members import (
    member_filters,
    render_members,
)
from smartunion.web.deps import ClientIp, Crypto, DbSession
from smartunion.web.labels import industry_label
from smartunion.web.pagekit import (
    ConsolePage,
    Page,
    RecordId,
    caller,
    local_time,
    opt_enum,
    opt_int,
    page_router,
)

router = page_router()

Encoding = Literal["utf-8-sig", "gb18030"]


@dataclass(frozen=True)
class ExportRow:
    request: ExportRequest
    org_name: str
    requester: str
    filters: list[tuple[str, str]]
    created: str
    decided: str
    mine: bool
    can_decide: bool
    can_download: bool


def _filter_labels(page: Page, filters: dict[str, Any]) -> list[tuple[str, str]]:
    """The stored export filters as (label, value) for people, not as JSON."""
    t = page.t
    out: list[tuple[str, str]] = []
    if filters.get("q"):
        out.append((t("members.search"), str(filters["q"])))
    lookup = filters.get("lookup")
    if isinstance(lookup, dict) and lookup.get("masked"):
        out.append((t("members.search"), str(lookup["masked"])))
    form = opt_enum(EmploymentForm, filters.get("employment_form"))
    if form is not None:
        out.append((t("field.employment_form"), t.enum(form)))
    status = opt_enum(MemberStatus, filters.get("status"))
    if status is not None:
        out.append((t("field.status"), t.enum(status)))
    gender = opt_enum(Gender, filters.get("gender"))
    if gender is not None:
        out.append((t("field.gender"), t.enum(gender)))
    if filters.get("age_band"):
        out.append((t("members.age_band"), t("members.age_value", band=filters["age_band"])))
    if filters.get("industry"):
        out.append((t("field.industry"), industry_label(str(filters["industry"]))))
    if filters.get("enterprise_id"):
        out.append((t("field.enterprise"), f"#{filters['enterprise_id']}"))
    return out


def _requester_names(
    session: Session, principal: Principal, requests: Sequence[ExportRequest]
) -> dict[int, str]:
    """Usernames of other requesters, through the scoped user service where allowed."""
    names: dict[int, str] = {}
    if not principal.can(Permission.USER_READ):
        return names
    for user_id in {r.requested_by for r in requests} - {principal.user_id}:
        try:
            names[user_id] = users.get_user(session, principal, user_id).username
        except NotFound:
            continue  # a requester above the caller's scope: shown by number only
    return names


def _rows(page: Page, session: Session, requests: Sequence[ExportRequest]) -> list[ExportRow]:
    principal = caller(page)
    # The organisation ids came from the scoped visible_requests(); their names add nothing.
    org_names, _ = member_repo.names_for(session, {r.org_id for r in requests}, set())
    names = _requester_names(session, principal, requests)
    can_approve = principal.can(Permission.EXPORT_APPROVE)
    rows = []
    for r in requests:
        mine = r.requested_by == principal.user_id
        rows.append(
            ExportRow(
                request=r,
                org_name=org_names.get(r.org_id, f"#{r.org_id}"),
                requester=page.t("exports.me")
                if mine
                else names.get(r.requested_by, f"#{r.requested_by}"),
                filters=_filter_labels(page, r.filters or {}),
                created=local_time(r.created_at, "%Y-%m-%d %H:%M"),
                decided=local_time(r.decided_at, "%Y-%m-%d %H:%M") if r.decided_at else "",
                mine=mine,
                can_decide=can_approve and not mine and r.status == "pending",
                can_download=mine and r.status == "approved",
            )
        )
    return rows


def _exports_page(
    page: Page, session: Session, *, created: int | None = None, decided: bool = False
) -> HTMLResponse:
    principal = caller(page)
    requests = exports.visible_requests(session, principal)
    notice = "exports.notice.decided" if decided else None
    for request in requests:
        if request.id == created and request.requested_by == principal.user_id:
            # Say whether it went through at once or waits for a second person.
            pending = request.status == "pending"
            notice = "exports.notice.created_pending" if pending else "exports.notice.created_ok"
    rows = _rows(page, session, requests)
    return page.render(
        "console/exports.html",
        awaiting=[r for r in rows if r.can_decide],
        mine=[r for r in rows if r.mine],
        others=[r for r in rows if not r.mine and not r.can_decide],
        notice=notice,
        threshold=page.state.settings.export_approval_threshold,
        nav="exports",
    )


@router.get("/console/exports")
def export_list(
    page: ConsolePage,
    session: DbSession,
    created: Annotated[str, Query(max_length=10)] = "",
    decided: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    return _exports_page(
        page, session, created=opt_int(created), decided=opt_int(decided) is not None
    )


@router.post("/console/exports")
def export_create(
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    ip: ClientIp,
    org_id: Annotated[str, Form(max_length=12)] = "",
    q: Annotated[str, Form(max_length=60)] = "",
    enterprise_id: Annotated[str, Form(max_length=12)] = "",
    employment_form: Annotated[str, Form(max_length=40)] = "",
    status: Annotated[str, Form(max_length=40)] = "",
    gender: Annotated[str, Form(max_length=8)] = "",
    age_band: Annotated[str, Form(max_length=8)] = "",
    industry: Annotated[str, Form(max_length=4)] = "",
    file_format: Annotated[str, Form(alias="format", max_length=8)] = "xlsx",
    unmasked: Annotated[str, Form(max_length=4)] = "",
    reason: Annotated[str, Form(max_length=300)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Request an export of the member list as filtered on the page that posted here."""
    page.check_csrf(csrf_token)
    principal = caller(page)
    filters = member_filters(
        q=q,
        org_id=org_id,
        enterprise_id=enterprise_id,
        employment_form=employment_form,
        status=status,
        gender=gender,
        age_band=age_band,
        industry=industry,
    )
    try:
        request = exports.request_export(
            session,
            principal,
            exports.ExportPolicy.from_settings(page.state.settings),
            dataset="members",
            org_id=filters.org_id or principal.org_id,
            filters=member_export.protect_filters(crypto, filters.export_filters()),
            file_format="csv" if file_format == "csv" else "xlsx",
            unmasked=unmasked == "1",
            reason=reason,
        )
    except InvalidInput:
        # An unmasked export without a reason: back to the list, the form open, the rest kept.
        return render_members(
            page,
            session,
            ip,
            filters,
            export_error="exports.error.reason",
            export_reason=reason.strip(),
            status_code=422,
        )
    return RedirectResponse(f"/console/exports?created={request.id}", status_code=303)


def _decide(page: Page, session: Session, export_id: int, *, approve: bool, note: str) -> Response:
    exports.decide(session, caller(page), export_id, approve=approve, note=note.strip())
    return RedirectResponse(f"/console/exports?decided={export_id}", status_code=303)


@router.post("/console/exports/{export_id}/approve")
def export_approve(
    export_id: RecordId,
    page: ConsolePage,
    session: DbSession,
    note: Annotated[str, Form(max_length=300)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    return _decide(page, session, export_id, approve=True, note=note)


@router.post("/console/exports/{export_id}/reject")
def export_reject(
    export_id: RecordId,
    page: ConsolePage,
    session: DbSession,
    note: Annotated[str, Form(max_length=300)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    return _decide(page, session, export_id, approve=False, note=note)


@router.post("/console/exports/{export_id}/download")
def export_download(
    export_id: RecordId,
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    encoding: Annotated[str, Form(max_length=12)] = "utf-8-sig",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    chosen: Encoding = "gb18030" if encoding == "gb18030" else "utf-8-sig"
    file = exports.download(
        session, caller(page), crypto, export_id, lang=page.lang, encoding=chosen
    )
    return Response(
        content=file.content,
        media_type=file.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.filename)}",
            "X-Export-SHA256": file.sha256,
            "Cache-Control": "no-store",
        },
    )
