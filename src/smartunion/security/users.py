"""Account management by administrators, with the escalation rules written down once.

An administrator manages accounts of organisations in their scope and may hand out only
roles at or below their own: an org admin can make staff, analysts, members and other org
admins in their subtree, never a system admin, auditor or security officer (separation of
duties, GB/T 22239 8.1.4.2). Nobody changes their own role. Every change is audited.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartunion.errors import InvalidInput, NotFound
from smartunion.members.models import Member
from smartunion.orgs.models import UnionOrg
from smartunion.security import audit, probes
from smartunion.security import service as identity
from smartunion.security.models import User
from smartunion.security.permissions import Permission, Role
from smartunion.security.principal import PermissionDenied, Principal
from smartunion.security.scopes import org_in_scope, scoped_org_ids

ASSIGNABLE: dict[Role, frozenset[Role]] = {
    Role.SYSTEM_ADMIN: frozenset(Role),
    Role.ORG_ADMIN: frozenset({Role.ORG_ADMIN, Role.STAFF, Role.ANALYST, Role.MEMBER}),
}


def _can_assign(principal: Principal, role: Role) -> None:
    if role not in ASSIGNABLE.get(principal.role, frozenset()):
        raise PermissionDenied(Permission.USER_MANAGE)


def list_users(session: Session, principal: Principal) -> Sequence[User]:
    principal.require(Permission.USER_READ)
    found = session.scalars(
        select(User).where(User.org_id.in_(scoped_org_ids(principal))).order_by(User.username)
    ).all()
    # Staff names and roles are personal data too: who listed them is on the record.
    audit.record(session, principal, "user.list", object_type="user", details={"count": len(found)})
    return found


def get_user(session: Session, principal: Principal, user_id: int) -> User:
    principal.require(Permission.USER_READ)
    user = session.scalar(
        select(User).where(User.id == user_id, User.org_id.in_(scoped_org_ids(principal)))
    )
    if user is None:
        raise probes.not_found(session, principal, "user", user_id)
    return user


def create(
    session: Session,
    principal: Principal,
    *,
    username: str,
    password: str,
    role: Role,
    org_id: int,
    display_name: str = "",
    member_id: int | None = None,
) -> User:
    principal.require(Permission.USER_MANAGE)
    _can_assign(principal, role)
    org = session.scalar(select(UnionOrg).where(org_in_scope(principal), UnionOrg.id == org_id))
    if org is None:
        raise NotFound("organisation")
    if member_id is not None:
        member_org = session.scalar(
            select(Member.org_id).where(
                Member.id == member_id, Member.org_id.in_(scoped_org_ids(principal))
            )
        )
        if member_org is None:
            raise NotFound("member")
        if member_org != org.id:
            raise InvalidInput("org_id", "a member's account belongs to their own union")
    return identity.create_user(
        session,
        principal,
        username=username,
        password=password,
        role=role,
        org=org,
        display_name=display_name,
        member_id=member_id,
    )


def update(
    session: Session,
    principal: Principal,
    user_id: int,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
    reset_totp: bool = False,
) -> User:
    principal.require(Permission.USER_MANAGE)
    user = get_user(session, principal, user_id)
    if user.id == principal.user_id and (role is not None or is_active is False):
        raise InvalidInput("role", "nobody changes their own role or disables themselves")
    # Managing an account needs the right to hand out its current role as well.
    _can_assign(principal, user.role)
    if role is not None and role != user.role:
        _can_assign(principal, role)
        if role is Role.MEMBER and user.member_id is None:
            raise InvalidInput("role", "a member account must be linked to a member record")
        audit.record(
            session,
            principal,
            "user.role_change",
            object_type="user",
            object_id=user.id,
            details={"from": str(user.role), "to": str(role)},
        )
        user.role = role
        user.role_changed_by_id = principal.user_id  # see security.independence
        identity.revoke_all_sessions(session, user.id)
    if is_active is not None and is_active != user.is_active:
        user.is_active = is_active
        audit.record(
            session,
            principal,
            "user.activate" if is_active else "user.deactivate",
            object_type="user",
            object_id=user.id,
        )
        if not is_active:
            identity.revoke_all_sessions(session, user.id)
    if reset_totp:
        identity.reset_totp(session, principal, user)
    return user
