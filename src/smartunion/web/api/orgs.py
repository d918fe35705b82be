"""Union organisations (工会组织)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from smartunion.db import DbId
from smartunion.orgs import schemas
from smartunion.orgs import service as orgs
from smartunion.orgs.models import OrgLevel
from smartunion.web.api.common import PageNo, PageSize
from smartunion.web.deps import ApiPrincipal, DbSession
from smartunion.web.unit import OneThreadRoute

router = APIRouter(prefix="/orgs", tags=["organisations"], route_class=OneThreadRoute)


@router.get("", response_model=schemas.Page[schemas.Org], summary="List organisations in scope")
def list_orgs(
    principal: ApiPrincipal,
    session: DbSession,
    parent_id: DbId | None = None,
    level: OrgLevel | None = None,
    q: Annotated[str | None, Query(max_length=60, description="Part of the name")] = None,
    page: PageNo = 1,
    size: PageSize = 50,
) -> schemas.Page[schemas.Org]:
    rows, total = orgs.list_orgs(
        session, principal, parent_id=parent_id, level=level, q=q, page=page, size=size
    )
    return schemas.Page(
        items=[schemas.Org.model_validate(o) for o in rows], total=total, page=page, size=size
    )


@router.get(
    "/tree",
    response_model=list[schemas.OrgNode],
    summary="One level of the tree: the caller's organisation, or the children of parent_id",
)
def tree(
    principal: ApiPrincipal, session: DbSession, parent_id: DbId | None = None
) -> list[schemas.OrgNode]:
    return orgs.tree_level(session, principal, parent_id)


@router.get("/{org_id}", response_model=schemas.Org)
def get_org(org_id: DbId, principal: ApiPrincipal, session: DbSession) -> schemas.Org:
    return schemas.Org.model_validate(orgs.get_org(session, principal, org_id))


@router.post("", response_model=schemas.Org, status_code=201)
def create_org(data: schemas.OrgCreate, principal: ApiPrincipal, session: DbSession) -> schemas.Org:
    return schemas.Org.model_validate(orgs.create_org(session, principal, data))


@router.patch("/{org_id}", response_model=schemas.Org)
def update_org(
    org_id: DbId, data: schemas.OrgUpdate, principal: ApiPrincipal, session: DbSession
) -> schemas.Org:
    return schemas.Org.model_validate(orgs.update_org(session, principal, org_id, data))
