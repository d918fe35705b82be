"""Member statistics in the console (会员统计): the analysts' home page.

Counts come from :func:`smartunion.stats.members.member_statistics`, i.e. already through
small-group and complementary suppression; the page only lays them out. The bar chart is
plain HTML: each bar gets a width class (``w-0`` … ``w-100`` in steps of 5, defined in
app.css), because the CSP forbids ``style=`` attributes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, get_args

from fastapi import Query, Response

from smartunion.orgs import service as orgs
from smartunion.stats import members as member_stats
from smartunion.web.api.stats import cell_labels
from smartunion.web.deps import DbSession
from smartunion.web.pagekit import (
    ConsolePage,
    breadcrumb,
    caller,
    opt_int,
    page_router,
    query_url,
)

router = page_router()

DIMENSIONS: tuple[member_stats.Dimension, ...] = get_args(member_stats.Dimension)


def width_class(count: int | None, largest: int) -> str:
    """``w-N``: the bar's share of the largest cell, rounded to 5 %; a non-empty cell at
    least ``w-1`` so that it stays visible."""
    if not count or largest <= 0:
        return "w-0"
    pct = round(20 * count / largest) * 5
    return f"w-{pct}" if pct > 0 else "w-1"


@dataclass(frozen=True)
class Bar:
    key: str
    label: str
    count: int | None
    width: str
    drill_url: str | None  # by organisation: the same statistics one level down

    @property
    def suppressed(self) -> bool:
        return self.count is None


def _dimension(value: str) -> member_stats.Dimension:
    for dim in DIMENSIONS:
        if dim == value:
            return dim
    return "org"


@router.get("/console/stats")
def stats_page(
    page: ConsolePage,
    session: DbSession,
    by: Annotated[str, Query(max_length=20)] = "org",
    org_id: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    principal = caller(page)
    dim = _dimension(by)
    settings = page.state.settings
    root, release = member_stats.member_statistics(
        session,
        principal,
        by=dim,
        org_id=opt_int(org_id),
        dp_only=principal.role in settings.stats_dp_roles,
        k=settings.stats_min_group,
        monthly_budget=settings.dp_monthly_budget,
    )
    keys = [c.key for c in release.cells]
    labels = cell_labels(session, dim, keys, page.lang)
    largest = max((c.count or 0 for c in release.cells), default=0)
    bars = [
        Bar(
            key=c.key,
            label=labels.get(c.key, c.key),
            count=c.count,
            width=width_class(c.count, largest),
            drill_url=query_url("/console/stats", {"by": "org", "org_id": c.key})
            if dim == "org" and c.key != str(root.id)
            else None,
        )
        for c in release.cells
    ]
    # Sub-organisations to narrow the statistics to (the tree level below the current one).
    children = orgs.tree_level(session, principal, root.id)
    return page.render(
        "console/stats.html",
        root=root,
        breadcrumb=breadcrumb(session, principal, root.path),
        dim=dim,
        dimensions=DIMENSIONS,
        dim_url=lambda d: query_url("/console/stats", {"by": d, "org_id": root.id}),
        org_url=lambda oid: query_url("/console/stats", {"by": dim, "org_id": oid}),
        children=children,
        bars=bars,
        release=release,
        nav="stats",
    )
