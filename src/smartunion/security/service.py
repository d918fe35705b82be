"""Identity use cases: users, log-in, sessions and bearer tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smartunion.db import utcnow
from smartunion.errors import KeepsTransaction
from smartunion.orgs.models import UnionOrg
from smartunion.security import audit
from smartunion.security.models import AuthSession, User
from smartunion.security.passwords import burn_verification, hash_password, verify_password
from smartunion.security.permissions import Role
from smartunion.security.principal import Principal

MAX_FAILURES = 5
LOCKOUT = dt.timedelta(minutes=15)


class AuthenticationFailed(KeepsTransaction):
    """Deliberately vague towards the caller: which part was wrong is only in the audit."""


class UserError(ValueError):
    pass


@dataclass(frozen=True)
class SessionLimits:
    max_age: dt.timedelta
    idle: dt.timedelta


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_user(
    session: Session,
    actor: Principal | None,
    *,
    username: str,
    password: str,
    role: Role,
    org: UnionOrg,
    display_name: str = "",
    member_id: int | None = None,
) -> User:
    if actor is not None and not actor.covers_path(org.path):
        raise UserError("organisation outside your scope")
    if role is Role.MEMBER and member_id is None:
        raise UserError("a member account must be linked to a member record")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise UserError(f"username {username!r} is taken")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password),
        role=role,
        org_id=org.id,
        member_id=member_id,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "user.create",
        object_type="user",
        object_id=user.id,
        details={"username": username, "role": str(role), "org_id": org.id},
    )
    return user


def authenticate(session: Session, username: str, password: str, *, client_ip: str = "") -> User:
    user = session.scalar(select(User).where(User.username == username))
    now = utcnow()
    if user is None:
        burn_verification(password)
        audit.record(
            session,
            None,
            "auth.login",
            outcome="failed",
            username=username[:64],
            details={"reason": "unknown user"},
            client_ip=client_ip,
        )
        raise AuthenticationFailed
    if not user.is_active:
        reason = "inactive"
    elif user.locked_until is not None and user.locked_until > now:
        reason = "locked"
    elif not verify_password(user.password_hash, password):
        user.failed_logins += 1
        if user.failed_logins >= MAX_FAILURES:
            user.locked_until = now + LOCKOUT
        reason = "bad password"
    else:
        user.failed_logins = 0
        user.locked_until = None
        user.last_login_at = now
        audit.record(
            session,
            None,
            "auth.login",
            object_type="user",
            object_id=user.id,
            username=user.username,
            client_ip=client_ip,
        )
        return user
    audit.record(
        session,
        None,
        "auth.login",
        outcome="failed",
        object_type="user",
        object_id=user.id,
        username=user.username,
        details={"reason": reason},
        client_ip=client_ip,
    )
    raise AuthenticationFailed


def open_session(
    session: Session, user: User, *, kind: str, lifetime: dt.timedelta, client_ip: str = ""
) -> str:
    """Start a session and return its secret; only its hash is stored."""
    token = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        AuthSession(
            token_hash=_token_hash(token),
            user_id=user.id,
            kind=kind,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
            client_ip=client_ip,
        )
    )
    session.flush()
    return token


def resolve_session(
    session: Session, token: str, *, kind: str, limits: SessionLimits | None = None
) -> Principal | None:
    """The principal behind a live token, or None if unknown, revoked, expired or idle."""
    row = session.execute(
        select(AuthSession, User, UnionOrg.path)
        .join(User, User.id == AuthSession.user_id)
        .join(UnionOrg, UnionOrg.id == User.org_id)
        .where(AuthSession.token_hash == _token_hash(token), AuthSession.kind == kind)
    ).first()
    if row is None:
        return None
    auth, user, org_path = row
    now = utcnow()
    if auth.revoked_at is not None or auth.expires_at <= now or not user.is_active:
        return None
    if limits is not None and now - auth.last_seen_at > limits.idle:
        return None
    # Touch at most once a minute: saves a write per request.
    if now - auth.last_seen_at > dt.timedelta(minutes=1):
        auth.last_seen_at = now
    return Principal.for_user(
        user_id=user.id,
        username=user.username,
        role=user.role,
        org_id=user.org_id,
        org_path=org_path,
        member_id=user.member_id,
        session_id=auth.id,
    )


def revoke_session(session: Session, token: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == _token_hash(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
