"""Organisation scopes: the only place the "who may see which records" filter is written.

Each domain repository builds its readable statement from these; there is no other path
to personal data outside admin CLI commands.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, false, select

from smartunion.orgs.models import UnionOrg
from smartunion.security.permissions import Role
from smartunion.security.principal import Principal


def org_in_scope(principal: Principal) -> ColumnElement[bool]:
    if principal.role is Role.MEMBER:
        return UnionOrg.id == principal.org_id
    return UnionOrg.path.startswith(principal.org_path, autoescape=True)


def scoped_org_ids(principal: Principal) -> Select[int]:
    return select(UnionOrg.id).where(org_in_scope(principal))


def subtree_org_ids(path: str) -> Select[int]:
    return select(UnionOrg.id).where(UnionOrg.path.startswith(path, autoescape=True))


def nothing() -> ColumnElement[bool]:
    return false()
