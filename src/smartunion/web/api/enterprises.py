"""Enterprises (企业/单位) and their departments."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from smartunion.db import DbId
from smartunion.orgs import repository as org_repo
from smartunion.orgs import schemas
from smartunion.orgs import service as orgs
from smartunion.web.api.common import PageNo, PageSize
from smartunion.web.deps import ApiPrincipal, DbSession
from smartunion.web.unit import OneThreadRoute

router = APIRouter(prefix="/enterprises", tags=["enterprises"], route_class=OneThreadRoute)


class Department(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    enterprise_id: DbId
    name: str


@router.get("", response_model=schemas.Page[schemas.Enterprise])
def list_enterprises(
    principal: ApiPrincipal,
    session: DbSession,
    org_id: Annotated[DbId | None, Query(description="Only under this organisation")] = None,
    industry_division: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
    q: Annotated[str | None, Query(max_length=60, description="Part of the name")] = None,
    page: PageNo = 1,
    size: PageSize = 50,
) -> schemas.Page[schemas.Enterprise]:
    rows, total = orgs.list_enterprises(
        session,
        principal,
        org_id=org_id,
        industry_division=industry_division,
        q=q,
        page=page,
        size=size,
    )
    return schemas.Page(
        items=[orgs.enterprise_out(e) for e in rows], total=total, page=page, size=size
    )


@router.get("/{enterprise_id}", response_model=schemas.Enterprise)
def get_enterprise(
    enterprise_id: DbId, principal: ApiPrincipal, session: DbSession
) -> schemas.Enterprise:
    return orgs.enterprise_out(orgs.get_enterprise(session, principal, enterprise_id))


@router.get("/{enterprise_id}/departments", response_model=list[Department])
def departments(
    enterprise_id: DbId, principal: ApiPrincipal, session: DbSession
) -> list[Department]:
    ent = orgs.get_enterprise(session, principal, enterprise_id)
    return [Department.model_validate(d) for d in org_repo.departments_of(session, ent.id)]


@router.post("", response_model=schemas.Enterprise, status_code=201)
def create_enterprise(
    data: schemas.EnterpriseCreate, principal: ApiPrincipal, session: DbSession
) -> schemas.Enterprise:
    return orgs.enterprise_out(orgs.create_enterprise(session, principal, data))


@router.patch("/{enterprise_id}", response_model=schemas.Enterprise)
def update_enterprise(
    enterprise_id: DbId,
    data: schemas.EnterpriseUpdate,
    principal: ApiPrincipal,
    session: DbSession,
) -> schemas.Enterprise:
    return orgs.enterprise_out(orgs.update_enterprise(session, principal, enterprise_id, data))
