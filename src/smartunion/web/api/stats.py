"""Published statistics: aggregates only, small groups suppressed, optional differential privacy."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy.orm import Session

from smartunion.db import DbId
from smartunion.i18n import translator
from smartunion.members.models import EmploymentForm, Gender
from smartunion.stats import members as member_stats
from smartunion.stats import privacy
from smartunion.web.deps import ApiPrincipal, DbSession, State
from smartunion.web.unit import OneThreadRoute

router = APIRouter(prefix="/stats", tags=["statistics"], route_class=OneThreadRoute)


class StatCell(BaseModel):
    key: str
    label: str
    count: int | None
    suppressed: bool


class MemberStats(BaseModel):
    org_id: DbId
    org_name: str
    by: member_stats.Dimension
    mode: privacy.Mode
    k: int
    epsilon: float | None
    total: int | None
    cells: list[StatCell]


def cell_labels(
    session: Session, by: member_stats.Dimension, keys: list[str], lang: str
) -> dict[str, str]:
    t = translator(lang)
    if by == "employment_form":
        return {k: t.enum(EmploymentForm(k)) for k in keys}
    if by == "gender":
        return {k: t.enum(Gender(k)) for k in keys}
    return member_stats.labels(session, by, keys)


@router.get(
    "/members",
    response_model=MemberStats,
    summary="Member counts by organisation, industry, employment form, age band or gender",
)
def members(
    principal: ApiPrincipal,
    session: DbSession,
    state: State,
    by: member_stats.Dimension = "org",
    org_id: DbId | None = None,
    mode: Annotated[
        privacy.Mode | None,
        Query(
            description="k: exact counts, small groups suppressed (inside the union); "
            "dp: differentially private (for publication). Default: dp when epsilon is given"
        ),
    ] = None,
    epsilon: Annotated[
        float | None,
        Query(ge=0.01, le=5, description="ε of the dp mode (Laplace noise of scale 1/ε)"),
    ] = None,
) -> MemberStats:
    settings = state.settings
    root, release = member_stats.member_statistics(
        session,
        principal,
        by=by,
        org_id=org_id,
        epsilon=epsilon,
        mode=mode,
        dp_only=principal.role in settings.stats_dp_roles,
        k=settings.stats_min_group,
        monthly_budget=settings.dp_monthly_budget,
    )
    names = cell_labels(session, by, [c.key for c in release.cells], settings.language)
    return MemberStats(
        org_id=root.id,
        org_name=root.name,
        by=by,
        mode=release.mode,
        k=release.k,
        epsilon=release.epsilon,
        total=release.total,
        cells=[
            StatCell(
                key=c.key, label=names.get(c.key, c.key), count=c.count, suppressed=c.suppressed
            )
            for c in release.cells
        ],
    )
