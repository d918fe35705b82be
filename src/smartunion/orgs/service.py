"""Use cases for organisations and enterprises. Services flush; the request commits."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from smartunion.errors import Conflict
from smartunion.orgs import repository as repo
from smartunion.orgs import schemas
from smartunion.orgs.models import Enterprise, OrgLevel, UnionOrg
from smartunion.reference import industries
from smartunion.security import audit, probes
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal

_LEVEL_ORDER = list(OrgLevel)


def get_org(session: Session, principal: Principal, org_id: int) -> UnionOrg:
    principal.require(Permission.ORG_READ)
    org = repo.get_org(session, principal, org_id)
    if org is None:
        raise probes.not_found(session, principal, "organisation", org_id)
    return org


def list_orgs(
    session: Session,
    principal: Principal,
    *,
    parent_id: int | None = None,
    level: OrgLevel | None = None,
    q: str | None = None,
    page: int = 1,
    size: int = 50,
) -> tuple[Sequence[UnionOrg], int]:
    principal.require(Permission.ORG_READ)
    return repo.list_orgs(
        session,
        principal,
        parent_id=parent_id,
        level=level,
        q=q,
        offset=(page - 1) * size,
        limit=size,
    )


def tree_level(
    session: Session, principal: Principal, parent_id: int | None
) -> list[schemas.OrgNode]:
    """Children of ``parent_id`` (or the caller's own organisation) with their child counts."""
    principal.require(Permission.ORG_READ)
    if parent_id is None:
        orgs = list(repo.scope_roots(session, principal))
    else:
        get_org(session, principal, parent_id)
        orgs = list(repo.list_orgs(session, principal, parent_id=parent_id, limit=5000)[0])
    counts = repo.child_counts(session, [o.id for o in orgs])
    return [
        schemas.OrgNode.model_validate(o).model_copy(update={"child_count": counts.get(o.id, 0)})
        for o in orgs
    ]


def create_org(session: Session, principal: Principal, data: schemas.OrgCreate) -> UnionOrg:
    principal.require(Permission.ORG_WRITE)
    parent = get_org(session, principal, data.parent_id)
    if _LEVEL_ORDER.index(data.level) <= _LEVEL_ORDER.index(parent.level):
        raise Conflict(f"a {data.level} organisation cannot sit under a {parent.level} one")
    if repo.code_taken(session, data.code):
        raise Conflict(f"union code {data.code} is already registered")
    if data.enterprise_id is not None:
        # The enterprise must be one the caller may see (an id from outside the scope answers
        # 404 like any other out-of-scope record) and registered inside the new union's parent
        # subtree: an organisation cannot annex another branch's enterprise.
        ent = get_enterprise(session, principal, data.enterprise_id)
        ent_org = session.get(UnionOrg, ent.org_id)
        if ent_org is None or not ent_org.path.startswith(parent.path):
            raise Conflict("the enterprise is registered outside the parent organisation")
    org = UnionOrg(
        code=data.code,
        name=data.name,
        level=data.level,
        kind=data.kind,
        region_code=data.region_code,
        parent_id=parent.id,
        path="",
        enterprise_id=data.enterprise_id,
    )
    session.add(org)
    session.flush()
    org.path = f"{parent.path}{org.id}/"
    audit.record(
        session,
        principal,
        "org.create",
        object_type="org",
        object_id=org.id,
        details={"code": org.code, "parent_id": parent.id},
    )
    return org


def update_org(
    session: Session, principal: Principal, org_id: int, data: schemas.OrgUpdate
) -> UnionOrg:
    principal.require(Permission.ORG_WRITE)
    org = get_org(session, principal, org_id)
    changed = data.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changed.items():
        setattr(org, field, value)
    audit.record(
        session,
        principal,
        "org.update",
        object_type="org",
        object_id=org.id,
        details={"fields": sorted(changed)},
    )
    return org


def enterprise_out(ent: Enterprise) -> schemas.Enterprise:
    division = industries.division(ent.industry_division)
    return schemas.Enterprise.model_validate(ent).model_copy(
        update={"industry_name": division.name if division else ""}
    )


def get_enterprise(session: Session, principal: Principal, ent_id: int) -> Enterprise:
    principal.require(Permission.ENTERPRISE_READ)
    ent = repo.get_enterprise(session, principal, ent_id)
    if ent is None:
        raise probes.not_found(session, principal, "enterprise", ent_id)
    return ent


def list_enterprises(
    session: Session,
    principal: Principal,
    *,
    org_id: int | None = None,
    industry_division: str | None = None,
    q: str | None = None,
    page: int = 1,
    size: int = 50,
) -> tuple[Sequence[Enterprise], int]:
    principal.require(Permission.ENTERPRISE_READ)
    org_path = get_org(session, principal, org_id).path if org_id is not None else None
    return repo.list_enterprises(
        session,
        principal,
        org_path=org_path,
        industry_division=industry_division,
        q=q,
        offset=(page - 1) * size,
        limit=size,
    )


def create_enterprise(
    session: Session, principal: Principal, data: schemas.EnterpriseCreate
) -> Enterprise:
    principal.require(Permission.ENTERPRISE_WRITE)
    get_org(session, principal, data.org_id)
    if repo.uscc_taken(session, data.uscc):
        raise Conflict(f"unified social credit code {data.uscc} is already registered")
    ent = Enterprise(**data.model_dump())
    session.add(ent)
    session.flush()
    audit.record(
        session,
        principal,
        "enterprise.create",
        object_type="enterprise",
        object_id=ent.id,
        details={"uscc": ent.uscc, "org_id": ent.org_id},
    )
    return ent


def update_enterprise(
    session: Session, principal: Principal, ent_id: int, data: schemas.EnterpriseUpdate
) -> Enterprise:
    principal.require(Permission.ENTERPRISE_WRITE)
    ent = get_enterprise(session, principal, ent_id)
    changed = data.model_dump(exclude_unset=True, exclude_none=True)
    for field, value in changed.items():
        setattr(ent, field, value)
    audit.record(
        session,
        principal,
        "enterprise.update",
        object_type="enterprise",
        object_id=ent.id,
        details={"fields": sorted(changed)},
    )
    return ent
