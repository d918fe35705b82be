"""Personal-information rights: a member's consents, data and requests; staff answers;
the processing register for the data protection officer."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from smartunion.db import DbId
from smartunion.privacy import service as privacy
from smartunion.privacy.models import SubjectRequest
from smartunion.privacy.register import PURPOSES
from smartunion.web.deps import ApiPrincipal, Crypto, DbSession
from smartunion.web.unit import OneThreadRoute

router = APIRouter(tags=["privacy"], route_class=OneThreadRoute)


class Consent(BaseModel):
    purpose: str
    title: str
    text: str
    version: str
    separate_consent: bool
    granted: bool
    granted_at: dt.datetime | None
    granted_version: str | None


class SubjectRequestIn(BaseModel):
    kind: Literal["correction", "deletion"]
    field: str = Field("", max_length=40, description="Which field is wrong (corrections)")
    note: str = Field("", max_length=500, description="The right value or the reason")


class SubjectRequestOut(BaseModel):
    id: int
    member_id: DbId
    kind: str
    field: str
    note: str | None = None
    status: str
    response: str
    created_at: dt.datetime
    handled_at: dt.datetime | None


class Resolution(BaseModel):
    accept: bool
    response: str = Field("", max_length=300)


def _request_out(r: SubjectRequest, note: str | None = None) -> SubjectRequestOut:
    return SubjectRequestOut(
        id=r.id,
        member_id=r.member_id,
        kind=r.kind,
        field=r.field,
        note=note,
        status=r.status,
        response=r.response,
        created_at=r.created_at,
        handled_at=r.handled_at,
    )


@router.get("/me/consents", response_model=list[Consent])
def my_consents(principal: ApiPrincipal, session: DbSession) -> list[Consent]:
    live = privacy.consents(session, principal)
    return [
        Consent(
            purpose=key,
            title=PURPOSES[key].title,
            text=PURPOSES[key].text,
            version=PURPOSES[key].version,
            separate_consent=PURPOSES[key].separate_consent,
            granted=record is not None,
            granted_at=record.granted_at if record else None,
            granted_version=record.version if record else None,
        )
        for key, record in live.items()
    ]


@router.put("/me/consents/{purpose}", status_code=204, summary="Give consent (current version)")
def give_consent(purpose: str, principal: ApiPrincipal, session: DbSession) -> Response:
    privacy.grant(session, principal, purpose, channel="api")
    return Response(status_code=204)


@router.delete("/me/consents/{purpose}", status_code=204, summary="Withdraw consent")
def withdraw_consent(purpose: str, principal: ApiPrincipal, session: DbSession) -> Response:
    privacy.withdraw(session, principal, purpose)
    return Response(status_code=204)


@router.get("/me/data", summary="Everything held about me (JSON download)")
def my_data(principal: ApiPrincipal, session: DbSession, crypto: Crypto) -> Response:
    body = json.dumps(privacy.my_data(session, principal, crypto), ensure_ascii=False, indent=2)
    return Response(
        content=body,
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-data.json"'},
    )


@router.post("/me/requests", response_model=SubjectRequestOut, status_code=201)
def submit_request(
    data: SubjectRequestIn, principal: ApiPrincipal, session: DbSession, crypto: Crypto
) -> SubjectRequestOut:
    request = privacy.submit_request(
        session, principal, crypto, kind=data.kind, field=data.field, note=data.note
    )
    return _request_out(request)


@router.get("/me/requests", response_model=list[SubjectRequestOut])
def my_requests(principal: ApiPrincipal, session: DbSession) -> list[SubjectRequestOut]:
    return [_request_out(r) for r in privacy.my_requests(session, principal)]


@router.get(
    "/privacy/requests",
    response_model=list[SubjectRequestOut],
    summary="Open correction and deletion requests of members in scope",
)
def open_requests(
    principal: ApiPrincipal, session: DbSession, crypto: Crypto
) -> list[SubjectRequestOut]:
    return [
        _request_out(r, privacy.request_note(crypto, r))
        for r in privacy.open_requests(session, principal)
    ]


@router.post("/privacy/requests/{request_id}/resolve", response_model=SubjectRequestOut)
def resolve_request(
    request_id: DbId,
    data: Resolution,
    principal: ApiPrincipal,
    session: DbSession,
    crypto: Crypto,
) -> SubjectRequestOut:
    request = privacy.resolve_request(
        session, principal, crypto, request_id, accept=data.accept, response=data.response
    )
    return _request_out(request)


@router.get("/privacy/register", summary="Record of processing activities (for the DPO)")
def register(principal: ApiPrincipal, session: DbSession) -> dict[str, Any]:
    return privacy.register_summary(session, principal)
