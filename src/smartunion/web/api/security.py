"""Security officer (安全管理员): alerts raised by the insider-leak guard."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from smartunion.db import DbId
from smartunion.security import alerts
from smartunion.web.deps import ApiPrincipal, DbSession
from smartunion.web.unit import OneThreadRoute

router = APIRouter(prefix="/security", tags=["security"], route_class=OneThreadRoute)


class Alert(BaseModel):
    id: int
    user_id: DbId
    username: str
    kind: str
    severity: str
    message: str
    details: dict[str, Any]
    created_at: dt.datetime
    resolved_at: dt.datetime | None
    resolution: str


class Resolve(BaseModel):
    note: str = Field(min_length=2, max_length=300)
    lift_suspension: bool = False
    allowance: int | None = Field(
        default=None,
        ge=0,
        le=1_000_000,
        description="Weighted records of room past the guard's limit after lifting a "
        "suspension (default: what the user had read past normal)",
    )
    allowance_hours: int | None = Field(default=None, ge=1, le=72)


def _out(alert: Any, username: str) -> Alert:
    return Alert(
        id=alert.id,
        user_id=alert.user_id,
        username=username,
        kind=alert.kind,
        severity=alert.severity,
        message=alert.message,
        details=alert.details,
        created_at=alert.created_at,
        resolved_at=alert.resolved_at,
        resolution=alert.resolution,
    )


@router.get("/alerts", response_model=list[Alert], summary="Alerts about users in scope")
def list_alerts(principal: ApiPrincipal, session: DbSession, open_only: bool = True) -> list[Alert]:
    return [_out(a, u) for a, u in alerts.list_alerts(session, principal, open_only=open_only)]


@router.post("/alerts/{alert_id}/resolve", response_model=Alert)
def resolve_alert(
    alert_id: DbId, data: Resolve, principal: ApiPrincipal, session: DbSession
) -> Alert:
    alert = alerts.resolve(
        session,
        principal,
        alert_id,
        note=data.note,
        lift_suspension=data.lift_suspension,
        allowance=data.allowance,
        allowance_hours=data.allowance_hours,
    )
    return _out(alert, "")
