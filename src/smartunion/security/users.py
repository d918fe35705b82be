"""Account management by administrators, with the escalation rules written down once.

An administrator manages accounts of organisations in their scope and may hand out only
roles at or below their own: an org admin can make staff, analysts and other org admins in
their subtree, never a system admin, auditor or security officer (separation of duties,
GB/T 22239 8.1.4.2). Nobody changes their own role. Every change is audited.

No staff role opens, links, reactivates or sets the password of an account that acts as a
member: whoever did would know its password and could read the member's plaintext and act
in their name. Such accounts are opened on the server (``security.service.
create_member_account``); an administrator may only switch one off.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.orm import Session

from smartunion.errors import InvalidInput, NotFound
from smartunion.orgs.models import UnionOrg
from smartunion.security import audit, probes
from smartunion.security import service as identity
from smartunion.security.models import User
from smartunion.security.permissions import Permission, Role
from smartunion.security.principal import PermissionDenied, Principal
from smartunion.security.scopes import org_in_scope, scoped_org_ids

ASSIGNABLE: dict[Role, frozenset[Role]] = {
    Role.SYSTEM_ADMIN: frozenset(Role) - {Role.MEMBER},
    Role.ORG_ADMIN: frozenset({Role.ORG_ADMIN, Role.STAFF, Role.ANALYST}),
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
) -> User:
    principal.require(Permission.USER_MANAGE)
    _can_assign(principal, role)
    org = session.scalar(select(UnionOrg).where(org_in_scope(principal), UnionOrg.id == org_id))
    if org is None:
        raise NotFound("organisation")
    return identity.create_user(
        session,
        principal,
        username=username,
        password=password,
        role=role,
        org=org,
        display_name=display_name,
    )


def _manageable(session: Session, principal: Principal, user_id: int) -> User:
    principal.require(Permission.USER_MANAGE)
    user = get_user(session, principal, user_id)
    if user.role is not Role.MEMBER:
        # Managing an account needs the right to hand out its current role as well.
        _can_assign(principal, user.role)
    return user


def update(
    session: Session,
    principal: Principal,
    user_id: int,
    *,
    role: Role | None = None,
    is_active: bool | None = None,
    reset_totp: bool = False,
) -> User:
    user = _manageable(session, principal, user_id)
    if user.id == principal.user_id and (role is not None or is_active is False):
        raise InvalidInput("role", "nobody changes their own role or disables themselves")
    if user.role is Role.MEMBER and (
        (role is not None and role != user.role) or is_active is True or reset_totp
    ):
        # Switching a member's account off is all staff may do to it.
        raise PermissionDenied(Permission.USER_MANAGE)
    if role is not None and role != user.role:
        _can_assign(principal, role)
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


def reset_password(session: Session, principal: Principal, user_id: int, new: str) -> User:
    """An administrator sets another account's password (a forgotten one), under the same
    rules as any other change to it; every session and token of that account ends. One's
    own password is changed with the current one (``identity.change_password``)."""
    user = _manageable(session, principal, user_id)
    if user.id == principal.user_id:
        raise InvalidInput("user_id", "change your own password with your current one")
    if user.role is Role.MEMBER:
        raise PermissionDenied(Permission.USER_MANAGE)
    identity.set_password(session, principal, user, new)
    return user
