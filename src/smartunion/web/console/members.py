"""Console member pages: the list with its filters, exact lookup, detail and reveal.

The list's filters and renderer are public (:class:`MemberFilters`, :func:`member_filters`,
:func:`render_members`): the export request form posts the same filters and, on a refusal,
shows the list again.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Form, Query, Response
from fastapi.responses import HTMLResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from smartunion.errors import InvalidInput, TooManyRequests
from smartunion.members import repository as member_repo
from smartunion.members import schemas as member_schemas
from smartunion.members import service as members
from smartunion.members.models import EmploymentForm, Gender, MemberStatus
from smartunion.orgs import repository as org_repo
from smartunion.orgs import service as orgs
from smartunion.reference import industries
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.web.deps import (
    ClientIp,
    Crypto,
    DbSession,
)
from smartunion.web.pagekit import (
    PAGE_SIZES,
    ConsolePage,
    Page,
    Pager,
    RecordId,
    caller,
    opt_enum,
    opt_int,
    page_number,
    page_router,
    page_size,
    query_url,
    years_since,
)

REVEALABLE = ("id_number", "phone", "name", "birth_date")

router = page_router()


def _member_rows(
    session: Session, items: Sequence[member_schemas.MemberListItem]
) -> list[dict[str, Any]]:
    # Names of the organisations and employers on the page; the ids came from a scoped
    # query, so looking their names up is no wider than what the caller already sees.
    org_names, ent_names = member_repo.names_for(
        session,
        {m.org_id for m in items},
        {m.enterprise_id for m in items if m.enterprise_id is not None},
    )
    return [
        {
            "item": m,
            "birth_year": m.birth_date[:4],
            "org_name": org_names.get(m.org_id, ""),
            "enterprise_name": ent_names.get(m.enterprise_id, "") if m.enterprise_id else "",
        }
        for m in items
    ]


SORTS: tuple[member_repo.MemberSort, ...] = ("id", "name", "join_desc", "join_asc")


def _industry(value: str) -> str | None:
    value = value.strip().upper()
    is_code = industries.section(value) is not None or industries.is_division_code(value)
    return value if is_code else None


@dataclass(frozen=True)
class MemberFilters:
    q: str
    org_id: int | None
    enterprise_id: int | None
    employment_form: EmploymentForm | None
    status: MemberStatus | None
    page: int
    size: int
    gender: Gender | None = None
    age_band: str | None = None
    industry: str | None = None
    sort: member_repo.MemberSort = "id"

    def params(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "org_id": self.org_id,
            "enterprise_id": self.enterprise_id,
            "employment_form": self.employment_form.value if self.employment_form else None,
            "status": self.status.value if self.status else None,
            "gender": self.gender.value if self.gender else None,
            "age_band": self.age_band,
            "industry": self.industry,
            "sort": None if self.sort == "id" else self.sort,
        }

    def export_filters(self) -> dict[str, Any]:
        """The export dataset's vocabulary: plain JSON values, only those that are set."""
        values = {**self.params(), "q": self.q or None}
        del values["org_id"], values["sort"]  # the export's own organisation; order is moot
        return {k: v for k, v in values.items() if v is not None}


def member_filters(
    q: Annotated[str, Query(max_length=60)] = "",
    org_id: str = "",
    enterprise_id: str = "",
    employment_form: str = "",
    status: str = "",
    page: str = "",
    size: str = "",
    gender: Annotated[str, Query(max_length=8)] = "",
    age_band: Annotated[str, Query(max_length=8)] = "",
    industry: Annotated[str, Query(max_length=4)] = "",
    sort: Annotated[str, Query(max_length=12)] = "",
) -> MemberFilters:
    return MemberFilters(
        q=q.strip(),
        org_id=opt_int(org_id),
        enterprise_id=opt_int(enterprise_id),
        employment_form=opt_enum(EmploymentForm, employment_form),
        status=opt_enum(MemberStatus, status),
        page=page_number(page),
        size=page_size(size),
        gender=opt_enum(Gender, gender),
        age_band=age_band if age_band in members.AGE_BANDS else None,
        industry=_industry(industry),
        sort=next((s for s in SORTS if s == sort), "id"),
    )


def org_choices(
    session: Session, principal: Principal, selected: int | None
) -> list[tuple[int, str, int]]:
    """The organisation filter's list: the caller's top organisations and their children
    (id, name, depth); the selected one is always in it."""
    choices: list[tuple[int, str, int]] = []
    for root in orgs.tree_level(session, principal, None):
        choices.append((root.id, root.name, 0))
        if root.child_count:
            choices += [(c.id, c.name, 1) for c in orgs.tree_level(session, principal, root.id)]
    if selected is not None and selected not in {c[0] for c in choices}:
        choices.insert(0, (selected, orgs.get_org(session, principal, selected).name, 0))
    return choices


def _enterprise_choices(
    session: Session, principal: Principal, org_id: int | None
) -> list[tuple[int, str]]:
    """Employers of the chosen organisation's subtree (the first 200 by name) for the list."""
    if org_id is None or not principal.can(Permission.ENTERPRISE_READ):
        return []
    rows, _ = orgs.list_enterprises(session, principal, org_id=org_id, size=200)
    return sorted(((e.id, e.name) for e in rows), key=lambda pair: pair[1])


def render_members(
    page: Page,
    session: Session,
    ip: str,
    filters: MemberFilters,
    *,
    lookup_rows: list[dict[str, Any]] | None = None,
    lookup_error: str | None = None,
    lookup_kind: str = "id_number",
    export_error: str | None = None,
    export_reason: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    principal = caller(page)
    items, total = members.list_members(
        session,
        principal,
        page.state.crypto,
        q=filters.q or None,
        org_id=filters.org_id,
        enterprise_id=filters.enterprise_id,
        employment_form=filters.employment_form,
        status=filters.status,
        gender=filters.gender,
        age_band=filters.age_band,
        industry=filters.industry,
        sort=filters.sort,
        page=filters.page,
        size=filters.size,
        client_ip=ip,
    )
    org_name = orgs.get_org(session, principal, filters.org_id).name if filters.org_id else ""
    ent_name = ""
    if filters.enterprise_id and principal.can(Permission.ENTERPRISE_READ):
        ent_name = orgs.get_enterprise(session, principal, filters.enterprise_id).name
    params = filters.params()
    return page.render(
        "console/members.html",
        status_code=status_code,
        rows=_member_rows(session, items),
        filters=filters,
        filter_org_name=org_name,
        filter_ent_name=ent_name,
        without=lambda key: query_url("/console/members", {**params, key: None}),
        pager=Pager("/console/members", params, filters.page, filters.size, total),
        employment_forms=list(EmploymentForm),
        statuses=list(MemberStatus),
        genders=list(Gender),
        age_bands=list(members.AGE_BANDS),
        industry_sections=[
            (s, [d for d in industries.divisions() if d.section == s.code])
            for s in industries.sections()
        ],
        sorts=SORTS,
        org_choices=org_choices(session, principal, filters.org_id),
        enterprise_choices=_enterprise_choices(session, principal, filters.org_id),
        page_sizes=PAGE_SIZES,
        lookup_rows=lookup_rows,
        lookup_error=lookup_error,
        lookup_kind=lookup_kind,
        export_error=export_error,
        export_reason=export_reason,
        nav="members",
    )


@router.get("/console/members")
def member_list(
    page: ConsolePage,
    session: DbSession,
    ip: ClientIp,
    filters: Annotated[MemberFilters, Depends(member_filters)],
) -> Response:
    return render_members(page, session, ip, filters)


@router.post("/console/members/lookup")
def member_lookup(
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    ip: ClientIp,
    kind: Annotated[str, Form(max_length=16)] = "id_number",
    value: Annotated[str, Form(max_length=32)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Exact lookup in a POST body: the number never reaches a URL, a log or the page."""
    page.check_csrf(csrf_token)
    principal = caller(page)
    kind = "phone" if kind == "phone" else "id_number"
    value = value.strip()
    rows: list[dict[str, Any]] | None = None
    error: str | None = None
    if not value:
        error = "lookup.error.empty"
    else:
        try:
            request = member_schemas.LookupRequest.model_validate({kind: value})
            found = members.lookup(session, principal, crypto, request, client_ip=ip)
            rows = _member_rows(session, found)
        except (InvalidInput, ValidationError):
            error = f"lookup.error.{kind}"
    filters = member_filters()
    return render_members(
        page,
        session,
        ip,
        filters,
        lookup_rows=rows,
        lookup_error=error,
        lookup_kind=kind,
        status_code=422 if error else 200,
    )


def _member_page(
    page: Page,
    session: Session,
    member: member_schemas.Member,
    *,
    revealed: dict[str, str | None] | None = None,
    reveal_error: str | None = None,
    reason: str = "",
    chosen: Sequence[str] = ("id_number", "phone"),
    notice: str | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    department = ""
    if member.department_id is not None:
        # The member was read through the scoped service; its department comes with it.
        dept = org_repo.get_department(session, member.department_id)
        department = dept.name if dept else ""
    return page.render(
        "console/member.html",
        status_code=status_code,
        m=member,
        department=department,
        member_years=years_since(member.join_date),
        revealed=revealed,
        reveal_error=reveal_error,
        reason=reason,
        chosen=set(chosen),
        revealable=REVEALABLE,
        notice=notice,
        nav="members",
    )


@router.get("/console/members/{member_id}")
def member_detail(
    member_id: RecordId,
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    ip: ClientIp,
    saved: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    member = members.get_member(session, caller(page), crypto, member_id, client_ip=ip)
    notice = f"memberform.saved.{saved}" if saved in ("created", "updated") else None
    return _member_page(page, session, member, notice=notice)


@router.post("/console/members/{member_id}/reveal")
def member_reveal(
    member_id: RecordId,
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    ip: ClientIp,
    reason: Annotated[str, Form(max_length=400)] = "",
    fields: Annotated[list[str] | None, Form()] = None,
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Plaintext once, on this response only: not in a cookie, a URL or a redirect."""
    page.check_csrf(csrf_token)
    principal = caller(page)
    chosen = [f for f in dict.fromkeys(fields or []) if f in REVEALABLE]
    revealed: dict[str, str | None] | None = None
    error: str | None = None
    status_code = 200
    try:
        request = member_schemas.RevealRequest.model_validate(
            {"reason": reason.strip(), "fields": chosen}
        )
    except ValidationError:
        error = "reveal.error.fields" if not chosen else "reveal.error.reason"
        status_code = 422
    else:
        try:
            result = members.reveal(session, principal, crypto, member_id, request, client_ip=ip)
            revealed = result.fields
        except TooManyRequests:
            error = "reveal.error.rate"
            status_code = 429
    member = members.get_member(session, principal, crypto, member_id, client_ip=ip)
    return _member_page(
        page,
        session,
        member,
        revealed=revealed,
        reveal_error=error,
        reason="" if revealed else reason.strip(),
        chosen=chosen or ("id_number", "phone"),
        status_code=status_code,
    )
