"""Members (会员). Responses are masked; plaintext only through the audited reveal."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from smartunion.db import DbId
from smartunion.members import schemas
from smartunion.members import service as members
from smartunion.members.models import EmploymentForm, MemberStatus
from smartunion.orgs.schemas import Page
from smartunion.web.api.common import PageNo, PageSize
from smartunion.web.deps import ApiPrincipal, ClientIp, Crypto, DbSession
from smartunion.web.unit import OneThreadRoute

router = APIRouter(tags=["members"], route_class=OneThreadRoute)


@router.get("/members", response_model=Page[schemas.MemberListItem])
def list_members(
    principal: ApiPrincipal,
    session: DbSession,
    crypto: Crypto,
    ip: ClientIp,
    q: Annotated[
        str | None,
        Query(
            max_length=60,
            description="Name prefix or exact member number; an ID number or mobile number "
            "is matched exactly through the blind index",
        ),
    ] = None,
    org_id: Annotated[DbId | None, Query(description="Only under this organisation")] = None,
    enterprise_id: DbId | None = None,
    employment_form: EmploymentForm | None = None,
    status: MemberStatus | None = None,
    page: PageNo = 1,
    size: PageSize = 20,
) -> Page[schemas.MemberListItem]:
    items, total = members.list_members(
        session,
        principal,
        crypto,
        q=q,
        org_id=org_id,
        enterprise_id=enterprise_id,
        employment_form=employment_form,
        status=status,
        page=page,
        size=size,
        client_ip=ip,
    )
    return Page(items=items, total=total, page=page, size=size)


@router.post(
    "/members/lookup",
    response_model=list[schemas.MemberListItem],
    summary="Exact lookup by ID number or phone (in the body, so it never appears in a URL)",
)
def lookup(
    data: schemas.LookupRequest,
    principal: ApiPrincipal,
    session: DbSession,
    crypto: Crypto,
    ip: ClientIp,
) -> list[schemas.MemberListItem]:
    return members.lookup(session, principal, crypto, data, client_ip=ip)


@router.get("/members/{member_id}", response_model=schemas.Member)
def get_member(
    member_id: DbId, principal: ApiPrincipal, session: DbSession, crypto: Crypto, ip: ClientIp
) -> schemas.Member:
    return members.get_member(session, principal, crypto, member_id, client_ip=ip)


@router.post("/members", response_model=schemas.Member, status_code=201)
def create_member(
    data: schemas.MemberCreate, principal: ApiPrincipal, session: DbSession, crypto: Crypto
) -> schemas.Member:
    return members.create_member(session, principal, crypto, data)


@router.patch("/members/{member_id}", response_model=schemas.Member)
def update_member(
    member_id: DbId,
    data: schemas.MemberUpdate,
    principal: ApiPrincipal,
    session: DbSession,
    crypto: Crypto,
) -> schemas.Member:
    return members.update_member(session, principal, crypto, member_id, data)


@router.post(
    "/members/{member_id}/reveal",
    response_model=schemas.Revealed,
    summary="Plaintext of chosen fields, for a stated reason (permission-checked, audited)",
)
def reveal(
    member_id: DbId,
    data: schemas.RevealRequest,
    principal: ApiPrincipal,
    session: DbSession,
    crypto: Crypto,
    ip: ClientIp,
) -> schemas.Revealed:
    return members.reveal(session, principal, crypto, member_id, data, client_ip=ip)


@router.get("/me/profile", response_model=schemas.Member, summary="The calling member's own record")
def my_profile(
    principal: ApiPrincipal, session: DbSession, crypto: Crypto, ip: ClientIp
) -> schemas.Member:
    return members.get_self(session, principal, crypto, client_ip=ip)
