"""Identity use cases: users, log-in, sessions and bearer tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update
from sqlalchemy.orm import Session

from smartunion.db import defer_write, utcnow
from smartunion.errors import Conflict, KeepsTransaction
from smartunion.orgs.models import UnionOrg
from smartunion.security import audit, identifiers, totp
from smartunion.security.crypto import FieldCrypto
from smartunion.security.models import TOTP_SECRET, AuthSession, User
from smartunion.security.passwords import burn_verification, hash_password, verify_password
from smartunion.security.permissions import Role
from smartunion.security.principal import Principal

MAX_FAILURES = 5
FIRST_LOCKOUT = dt.timedelta(minutes=1)
LONGEST_LOCKOUT = dt.timedelta(hours=24)


class AuthenticationFailed(KeepsTransaction):
    """Deliberately vague towards the caller: which part was wrong is only in the audit."""


class SecondFactorRequired(KeepsTransaction):
    """The password was right; the account needs a TOTP code with it."""


class EnrolmentRequired(KeepsTransaction):
    """The password was right; the role requires TOTP and the account has none yet."""

    def __init__(self, user: User) -> None:
        super().__init__("two-factor enrolment required")
        self.user = user


class UserError(ValueError):
    pass


def lockout_after(failures: int) -> dt.timedelta | None:
    """Exponential back-off: 1 min after the 5th failure, doubling, at most a day."""
    if failures < MAX_FAILURES:
        return None
    lock: dt.timedelta = FIRST_LOCKOUT * 2 ** min(failures - MAX_FAILURES, 16)
    return min(lock, LONGEST_LOCKOUT)


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
    if (role is Role.MEMBER) != (member_id is not None):
        raise UserError("member accounts, and only they, are linked to a member record")
    if (
        member_id is not None
        and session.scalar(select(User.id).where(User.member_id == member_id)) is not None
    ):
        raise Conflict("this member already has an account")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise Conflict(f"username {username!r} is taken")
    user = User(
        username=username,
        display_name=display_name or username,
        password_hash=hash_password(password, username=username),
        password_changed_at=utcnow(),
        role=role,
        org_id=org.id,
        member_id=member_id,
        # Who made the account: never the second person of its requests (independence).
        created_by_id=actor.user_id if actor is not None else None,
    )
    session.add(user)
    session.flush()
    audit.record(
        session,
        actor,
        "user.create",
        object_type="user",
        object_id=user.id,
        details={
            "username": identifiers.audit_username(user.id, username, role),
            "role": str(role),
            "org_id": org.id,
        },
    )
    return user


def authenticate(
    session: Session,
    username: str,
    password: str,
    *,
    otp: str | None = None,
    crypto: FieldCrypto | None = None,
    totp_roles: frozenset[str] = frozenset(),
    client_ip: str = "",
) -> User:
    """Check password (and TOTP where the account has it); lock out with back-off."""
    user = session.scalar(select(User).where(User.username == username))
    now = utcnow()

    def failed(reason: str) -> AuthenticationFailed:
        audit.record(
            session,
            None,
            "auth.login",
            outcome="failed",
            object_type="user",
            object_id=user.id if user else "",
            # A name that matches no account may be a password typed in the wrong field.
            username=identifiers.audit_username(user.id, user.username, user.role)
            if user
            else identifiers.redact_identifier(session, username),
            org_id=user.org_id if user else None,
            details={"reason": reason},
            client_ip=client_ip,
        )
        return AuthenticationFailed()

    if user is None:
        burn_verification(password)
        raise failed("unknown user")
    if not user.is_active:
        raise failed("inactive")
    if user.suspended_at is not None:
        raise failed("suspended")
    if user.locked_until is not None and user.locked_until > now:
        raise failed("locked")
    accepted = verify_password(user.password_hash, password)
    if accepted and user.totp_enabled:
        if otp is None:
            audit.record(
                session,
                None,
                "auth.login",
                outcome="otp_needed",
                object_type="user",
                object_id=user.id,
                username=identifiers.audit_username(user.id, user.username, user.role),
                org_id=user.org_id,
                client_ip=client_ip,
            )
            raise SecondFactorRequired
        accepted = _accept_totp(user, otp, crypto)
    if not accepted:
        # Counted in SQL: parallel guesses must each count (a read-modify-write would let
        # a burst of them record one failure).
        failures = session.execute(
            update(User)
            .where(User.id == user.id)
            .values(failed_logins=User.failed_logins + 1)
            .returning(User.failed_logins)
        ).scalar_one()
        lock = lockout_after(failures)
        if lock is not None:
            user.locked_until = now + lock
        raise failed("bad password or code")
    if not user.totp_enabled and str(user.role) in totp_roles:
        audit.record(
            session,
            None,
            "auth.login",
            outcome="enrol_needed",
            object_type="user",
            object_id=user.id,
            username=identifiers.audit_username(user.id, user.username, user.role),
            org_id=user.org_id,
            client_ip=client_ip,
        )
        raise EnrolmentRequired(user)
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = now
    audit.record(
        session,
        None,
        "auth.login",
        object_type="user",
        object_id=user.id,
        username=identifiers.audit_username(user.id, user.username, user.role),
        org_id=user.org_id,
        client_ip=client_ip,
    )
    return user


def _accept_totp(user: User, code: str, crypto: FieldCrypto | None) -> bool:
    if crypto is None or user.totp_secret_enc is None:
        raise RuntimeError("TOTP check needs the field crypto")
    secret = crypto.decrypt(user.totp_secret_enc, TOTP_SECRET.name)
    step = totp.matching_step(secret, code)
    # A code is good once: a replayed (or older) step is refused.
    if step is None or (user.totp_last_step is not None and step <= user.totp_last_step):
        return False
    user.totp_last_step = step
    return True


def begin_totp_enrolment(session: Session, user: User, crypto: FieldCrypto) -> str:
    """A fresh secret, stored encrypted and not yet active; shown to the user once."""
    secret = totp.new_secret()
    user.totp_secret_enc = crypto.encrypt(secret, TOTP_SECRET.name)
    user.totp_enabled = False
    user.totp_last_step = None
    session.flush()
    return secret


def confirm_totp_enrolment(
    session: Session, user: User, crypto: FieldCrypto, code: str, *, client_ip: str = ""
) -> bool:
    if user.totp_secret_enc is None or not _accept_totp(user, code, crypto):
        audit.record(
            session,
            None,
            "auth.totp_enrol",
            outcome="failed",
            object_type="user",
            object_id=user.id,
            username=identifiers.audit_username(user.id, user.username, user.role),
            org_id=user.org_id,
            client_ip=client_ip,
        )
        return False
    user.totp_enabled = True
    audit.record(
        session,
        None,
        "auth.totp_enrol",
        object_type="user",
        object_id=user.id,
        username=identifiers.audit_username(user.id, user.username, user.role),
        org_id=user.org_id,
        client_ip=client_ip,
    )
    return True


def reset_totp(session: Session, actor: Principal | None, user: User) -> None:
    """For a lost phone: the user enrols again at the next log-in."""
    user.totp_secret_enc = None
    user.totp_enabled = False
    user.totp_last_step = None
    audit.record(
        session,
        actor,
        "auth.totp_reset",
        object_type="user",
        object_id=user.id,
        username=None if actor else "cli",
    )


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


# Built once: this runs on every request, and constructing the statement (and loading two
# ORM objects instead of columns) was most of its cost.
_RESOLVE = (
    select(
        AuthSession.id,
        AuthSession.revoked_at,
        AuthSession.expires_at,
        AuthSession.last_seen_at,
        User.id.label("user_id"),
        User.username,
        User.role,
        User.org_id,
        User.member_id,
        User.is_active,
        User.suspended_at,
        UnionOrg.path,
    )
    .join(User, User.id == AuthSession.user_id)
    .join(UnionOrg, UnionOrg.id == User.org_id)
    .where(AuthSession.token_hash == bindparam("token_hash"), AuthSession.kind == bindparam("kind"))
)


def resolve_session(
    session: Session, token: str, *, kind: str, limits: SessionLimits | None = None
) -> Principal | None:
    """The principal behind a live token, or None if unknown, revoked, expired or idle."""
    row = session.execute(_RESOLVE, {"token_hash": _token_hash(token), "kind": kind}).first()
    if row is None:
        return None
    now = utcnow()
    if (
        row.revoked_at is not None
        or row.expires_at <= now
        or not row.is_active
        or row.suspended_at is not None
    ):
        return None
    if limits is not None and now - row.last_seen_at > limits.idle:
        return None
    # Touch at most once a minute: saves a write per request. Deferred to commit, so a
    # request takes no write lock for it while it works.
    if now - row.last_seen_at > dt.timedelta(minutes=1):
        defer_write(
            session, update(AuthSession).where(AuthSession.id == row.id).values(last_seen_at=now)
        )
    return Principal.for_user(
        user_id=row.user_id,
        username=row.username,
        role=row.role,
        org_id=row.org_id,
        org_path=row.path,
        member_id=row.member_id,
        session_id=row.id,
    )


def revoke_all_sessions(session: Session, user_id: int) -> None:
    """After a role change or deactivation: old tokens must not carry the old rights."""
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def revoke_session(session: Session, token: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.token_hash == _token_hash(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


def principal_for(session: Session, username: str) -> Principal:
    """The principal of an active account, for admin tools acting on someone's behalf."""
    row = session.execute(
        select(User, UnionOrg.path)
        .join(UnionOrg, UnionOrg.id == User.org_id)
        .where(User.username == username)
    ).first()
    if row is None or not row[0].is_active or row[0].suspended_at is not None:
        raise UserError(f"no active account {username!r}")
    user, path = row
    return Principal.for_user(
        user_id=user.id,
        username=user.username,
        role=user.role,
        org_id=user.org_id,
        org_path=path,
        member_id=user.member_id,
    )
