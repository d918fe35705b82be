"""Console enterprise pages: the list and one enterprise."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import Query, Response
from sqlalchemy.orm import Session

from smartunion.errors import NotFound
from smartunion.members import repository as member_repo
from smartunion.members import service as members
from smartunion.orgs import repository as org_repo
from smartunion.orgs import service as orgs
from smartunion.orgs.models import Enterprise
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.web.deps import DbSession
from smartunion.web.pagekit import (
    PAGE_SIZES,
    ConsolePage,
    Pager,
    RecordId,
    caller,
    opt_int,
    page_number,
    page_router,
    page_size,
    region_name,
)

router = page_router()


def _membership(
    principal: Principal, session: Session, enterprises: Sequence[Enterprise]
) -> dict[int, members.Membership]:
    # Counts for those who may read the members themselves; others see headcounts only.
    if not principal.can(Permission.MEMBER_READ):
        return {}
    return members.membership_by_enterprise(session, principal, enterprises)


@router.get("/console/enterprises")
def enterprise_list(
    page: ConsolePage,
    session: DbSession,
    q: Annotated[str, Query(max_length=60)] = "",
    org_id: str = "",
    page_no: Annotated[str, Query(alias="page")] = "",
    size: str = "",
) -> Response:
    principal = caller(page)
    n, per_page, org = page_number(page_no), page_size(size), opt_int(org_id)
    q = q.strip()
    rows, total = orgs.list_enterprises(
        session, principal, org_id=org, q=q or None, page=n, size=per_page
    )
    org_names, _ = member_repo.names_for(session, {e.org_id for e in rows}, set())
    params: dict[str, Any] = {"q": q, "org_id": org}
    membership = _membership(principal, session, rows)
    return page.render(
        "console/enterprises.html",
        rows=[
            (orgs.enterprise_out(e), org_names.get(e.org_id, ""), membership.get(e.id))
            for e in rows
        ],
        show_membership=principal.can(Permission.MEMBER_READ),
        q=q,
        org_id=org,
        filter_org_name=orgs.get_org(session, principal, org).name if org else "",
        pager=Pager("/console/enterprises", params, n, per_page, total),
        page_sizes=PAGE_SIZES,
        nav="enterprises",
    )


@router.get("/console/enterprises/{ent_id}")
def enterprise_detail(ent_id: RecordId, page: ConsolePage, session: DbSession) -> Response:
    principal = caller(page)
    ent = orgs.get_enterprise(session, principal, ent_id)
    try:
        org_name = orgs.get_org(session, principal, ent.org_id).name
    except NotFound:
        org_name = ""
    return page.render(
        "console/enterprise.html",
        ent=orgs.enterprise_out(ent),
        region_name=region_name(ent.region_code),
        org_name=org_name,
        membership=_membership(principal, session, [ent]).get(ent.id),
        # Departments belong to the enterprise just read through the scoped service.
        departments=org_repo.departments_of(session, ent.id),
        nav="enterprises",
    )
