"""The console's home page (工作台, ``/console``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response

from smartunion.orgs import service as orgs
from smartunion.security.permissions import Permission
from smartunion.stats import overview
from smartunion.web.console.orgs import (
    build_tree,
    open_node_ids,
)
from smartunion.web.deps import DbSession
from smartunion.web.pagekit import (
    ConsolePage,
    caller,
    page_router,
)

router = page_router()


@router.get("/console")
def dashboard(
    page: ConsolePage,
    session: DbSession,
    open_nodes: Annotated[list[str] | None, Query(alias="open")] = None,
) -> Response:
    principal = caller(page)
    roots = orgs.tree_level(session, principal, None)
    # The caller's own organisation starts expanded: its children are what they manage.
    open_ids = (
        open_node_ids(open_nodes) if open_nodes is not None else frozenset(r.id for r in roots)
    )
    tree = build_tree(session, principal, roots, open_ids)
    figures = None
    # Exact (k-mode) figures; roles limited to differential privacy see none.
    if (
        principal.can(Permission.STATS_READ)
        and principal.role not in page.state.settings.stats_dp_roles
    ):
        figures = overview.key_figures(session, principal)
    return page.render("console/dashboard.html", tree=tree, figures=figures, nav="home")
