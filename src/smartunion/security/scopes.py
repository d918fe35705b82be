"""Organisation scopes: the only place the "who may see which records" filter is written.

Each domain repository builds its readable statement from these; there is no other path
to personal data outside admin CLI commands.
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, Select, false, select

from smartunion.db import starts_with
from smartunion.orgs.models import UnionOrg
from smartunion.security.permissions import Role
from smartunion.security.principal import Principal


def org_in_scope(principal: Principal) -> ColumnElement[bool]:
    if principal.role is Role.MEMBER:
        return UnionOrg.id == principal.org_id
    return starts_with(UnionOrg.path, principal.org_path)


def scoped_org_ids(principal: Principal) -> Select[int]:
    return select(UnionOrg.id).where(org_in_scope(principal))


def subtree_org_ids(path: str) -> Select[int]:
    return select(UnionOrg.id).where(starts_with(UnionOrg.path, path))


def nothing() -> ColumnElement[bool]:
    return false()
