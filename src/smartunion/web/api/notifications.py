"""A member's notices (通知): e.g. that an account acting as them was opened or closed."""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from smartunion.notifications import service as notices
from smartunion.web.deps import ApiPrincipal, DbSession
from smartunion.web.unit import OneThreadRoute

router = APIRouter(tags=["notifications"], route_class=OneThreadRoute)


class NotificationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    kind: str
    params: dict[str, Any]
    created_at: dt.datetime
    read_at: dt.datetime | None


@router.get(
    "/me/notifications",
    response_model=list[NotificationOut],
    summary="My notices, newest first (members only)",
)
def my_notifications(principal: ApiPrincipal, session: DbSession) -> list[NotificationOut]:
    return [NotificationOut.model_validate(n) for n in notices.for_member(session, principal)]
