"""Console organisation pages: one organisation, and the tree of its children
(also drawn on the dashboard).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from fastapi import Response
from sqlalchemy.orm import Session

from smartunion.errors import NotFound
from smartunion.orgs import schemas as org_schemas
from smartunion.orgs import service as orgs
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.web.deps import DbSession
from smartunion.web.pagekit import (
    ConsolePage,
    RecordId,
    breadcrumb,
    caller,
    opt_int,
    page_router,
    query_url,
    region_name,
)

MAX_OPEN_NODES = 50  # expanded tree nodes carried in the URL

router = page_router()


@dataclass
class TreeNode:
    org: org_schemas.OrgNode
    toggle_url: str
    children: list[TreeNode] | None = None  # None: collapsed

    @property
    def expanded(self) -> bool:
        return self.children is not None


def build_tree(
    session: Session,
    principal: Principal,
    nodes: Sequence[org_schemas.OrgNode],
    open_ids: frozenset[int],
    depth: int = 0,
) -> list[TreeNode]:
    out = []
    for node in nodes:
        is_open = node.id in open_ids and node.child_count > 0
        toggled = open_ids - {node.id} if is_open else open_ids | {node.id}
        tree_node = TreeNode(node, query_url("/console", {"open": sorted(toggled)}))
        if is_open and depth < 8:
            children = orgs.tree_level(session, principal, node.id)
            tree_node.children = build_tree(session, principal, children, open_ids, depth + 1)
        out.append(tree_node)
    return out


def open_node_ids(values: Iterable[str]) -> frozenset[int]:
    ids = (opt_int(v) for v in values)
    return frozenset(list(i for i in ids if i is not None)[:MAX_OPEN_NODES])


@router.get("/console/orgs/{org_id}")
def org_detail(org_id: RecordId, page: ConsolePage, session: DbSession) -> Response:
    principal = caller(page)
    org = orgs.get_org(session, principal, org_id)
    children = orgs.tree_level(session, principal, org.id)
    enterprises: Sequence[org_schemas.Enterprise] = []
    enterprise_total = 0
    if principal.can(Permission.ENTERPRISE_READ):
        rows, enterprise_total = orgs.list_enterprises(session, principal, org_id=org.id, size=20)
        enterprises = [orgs.enterprise_out(e) for e in rows]
    parent_name = ""
    if org.parent_id is not None:
        try:
            parent_name = orgs.get_org(session, principal, org.parent_id).name
        except NotFound:
            parent_name = ""
    return page.render(
        "console/org.html",
        org=org_schemas.Org.model_validate(org),
        region_name=region_name(org.region_code),
        parent_name=parent_name,
        breadcrumb=breadcrumb(session, principal, org.path),
        children=children,
        enterprises=enterprises,
        enterprise_total=enterprise_total,
        nav="orgs",
    )


@router.get("/console/orgs/{org_id}/children")
def org_children(org_id: RecordId, page: ConsolePage, session: DbSession) -> Response:
    """One level of the tree as an HTML fragment, for app.js to insert in place."""
    children = orgs.tree_level(session, caller(page), org_id)
    nodes = [TreeNode(c, f"/console/orgs/{c.id}") for c in children]
    return page.render("console/_tree.html", nodes=nodes)
