"""Exports of personal data (导出): request, second-person approval, one-time download."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

import smartunion.datasets  # noqa: F401  (registers the datasets)
from smartunion.db import DbId
from smartunion.members import export as member_export
from smartunion.security import exports
from smartunion.web.deps import ApiPrincipal, Crypto, DbSession, State
from smartunion.web.unit import OneThreadRoute

router = APIRouter(prefix="/exports", tags=["exports"], route_class=OneThreadRoute)


class ExportCreate(BaseModel):
    dataset: Literal["members"] = "members"
    org_id: DbId
    filters: dict[str, Any] = Field(
        default_factory=dict,
        description="members: q, enterprise_id, employment_form, status",
    )
    format: Literal["csv", "xlsx"] = "xlsx"
    unmasked: bool = Field(False, description="Plaintext ID numbers and phones: always approved")
    reason: str = Field("", max_length=300)


class Export(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    uid: str
    dataset: str
    org_id: DbId
    filters: dict[str, Any]
    file_format: str
    unmasked: bool
    reason: str
    record_count: int
    status: str
    requested_by: int
    decided_by: int | None
    decided_at: dt.datetime | None
    decision_note: str
    created_at: dt.datetime


class Decision(BaseModel):
    note: str = Field("", max_length=300)


@router.post("", response_model=Export, status_code=201)
def create_export(
    data: ExportCreate, principal: ApiPrincipal, session: DbSession, state: State, crypto: Crypto
) -> Export:
    request = exports.request_export(
        session,
        principal,
        exports.ExportPolicy.from_settings(state.settings),
        dataset=data.dataset,
        org_id=data.org_id,
        filters=member_export.protect_filters(crypto, data.filters),
        file_format=data.format,
        unmasked=data.unmasked,
        reason=data.reason,
    )
    return Export.model_validate(request)


@router.get("", response_model=list[Export], summary="Own requests and those awaiting my approval")
def list_exports(principal: ApiPrincipal, session: DbSession) -> list[Export]:
    return [Export.model_validate(r) for r in exports.visible_requests(session, principal)]


@router.post("/{export_id}/approve", response_model=Export)
def approve(export_id: DbId, data: Decision, principal: ApiPrincipal, session: DbSession) -> Export:
    request = exports.decide(session, principal, export_id, approve=True, note=data.note)
    return Export.model_validate(request)


@router.post("/{export_id}/reject", response_model=Export)
def reject(export_id: DbId, data: Decision, principal: ApiPrincipal, session: DbSession) -> Export:
    request = exports.decide(session, principal, export_id, approve=False, note=data.note)
    return Export.model_validate(request)


@router.get(
    "/{export_id}/download",
    response_class=Response,
    responses={200: {"description": "The file (once)", "content": {"text/csv": {}}}},
)
def download(
    export_id: DbId,
    principal: ApiPrincipal,
    session: DbSession,
    crypto: Crypto,
    state: State,
    encoding: Annotated[Literal["utf-8-sig", "gb18030"], Query()] = "utf-8-sig",
) -> Response:
    file = exports.download(
        session, principal, crypto, export_id, lang=state.settings.language, encoding=encoding
    )
    return Response(
        content=file.content,
        media_type=file.media_type,
        headers={
            "Content-Disposition": f"attachment; filename*=UTF-8''{quote(file.filename)}",
            "X-Export-SHA256": file.sha256,
        },
    )
