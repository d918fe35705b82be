"""Identity use cases: users, log-in, sessions and bearer tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from enum import StrEnum

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


class AccountSuspended(KeepsTransaction):
    """The credentials were right, but the insider guard (or an officer) suspended the
    account; the answer names whom to contact. Raised only after the password (and code)
    were right, so it confirms nothing to someone who does not hold them."""

    def __init__(self, contact: SecurityContact) -> None:
        super().__init__("account suspended")
        self.contact = contact

    def message(self) -> str:
        who = ", ".join(self.contact.officers)
        where = self.contact.org_name
        return f"account suspended: contact the security officer of {where}" + (
            f" ({who})" if who else ""
        )


class UserError(ValueError):
    pass


class AccountState(StrEnum):
    """What an account can do now, in one word (lists show this, not ``is_active``)."""

    ACTIVE = "active"
    SUSPENDED = "suspended"  # by the insider guard or an officer; an officer lifts it
    INACTIVE = "inactive"  # deactivated by an administrator


def account_state(*, is_active: bool, suspended_at: dt.datetime | None) -> AccountState:
    if not is_active:
        return AccountState.INACTIVE
    if suspended_at is not None:
        return AccountState.SUSPENDED
    return AccountState.ACTIVE


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
    """A staff account. Accounts that act as a member: :func:`create_member_account`."""
    if actor is not None and not actor.covers_path(org.path):
        raise UserError("organisation outside your scope")
    if role is Role.MEMBER or member_id is not None:
        raise UserError(
            "member accounts are opened only on the server: "
            "`smartunion users create --role member --member-id N`"
        )
    return _new_user(
        session,
        actor,
        username=username,
        password=password,
        role=role,
        org=org,
        display_name=display_name,
        member_id=None,
        details={},
    )


class AccountChannel(StrEnum):
    """How an account that acts as a member came to be. Never a staff member's doing: they
    would know its password and could read the member's plaintext and act in their name.

    ``OPERATOR_CLI``: the operator, on the server (``smartunion users create --role member``).
    The member's own first log-in with a one-time code sent to their phone is the second
    channel; it arrives with the portal's sign-up (later issue) and calls
    :func:`create_member_account` with its own channel value (``SELF_ONE_TIME_CODE``).
    """

    OPERATOR_CLI = "operator_cli"


def create_member_account(
    session: Session,
    *,
    member_id: int,
    username: str,
    password: str,
    channel: AccountChannel,
    display_name: str = "",
) -> User:
    """Open the account that acts as member ``member_id``, audited, and notify the member.

    Takes no principal on purpose: no request of a staff member reaches it (the web layer
    has no route to it); the CLI on the server and the future self-service sign-up do.
    """
    from smartunion.members.models import Member
    from smartunion.notifications.service import NoticeKind, notify

    member = session.get(Member, member_id)
    if member is None:
        raise UserError(f"no member with id {member_id}")
    org = session.get(UnionOrg, member.org_id)
    if org is None:  # pragma: no cover (a foreign key)
        raise UserError(f"member {member_id} has no union")
    existing = session.scalar(select(User).where(User.member_id == member_id))
    if existing is not None:
        hint = (
            ""
            if existing.is_active
            else (
                f" (deactivated; reissue it with `smartunion users set-password "
                f"--username {existing.username} --activate`)"
            )
        )
        raise Conflict(f"this member already has an account: {existing.username}{hint}")
    user = _new_user(
        session,
        None,
        username=username,
        password=password,
        role=Role.MEMBER,
        org=org,
        display_name=display_name,
        member_id=member_id,
        details={"member_id": member_id, "channel": str(channel)},
    )
    notify(session, member_id, NoticeKind.ACCOUNT_CREATED, {"channel": str(channel)})
    return user


def _new_user(
    session: Session,
    actor: Principal | None,
    *,
    username: str,
    password: str,
    role: Role,
    org: UnionOrg,
    display_name: str,
    member_id: int | None,
    details: dict[str, object],
) -> User:
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
            **details,
        },
        username=None if actor else "cli",
        org_id=None if actor else org.id,
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
    """Check password (and TOTP where the account has it); lock out with back-off.

    What the caller learns is limited on purpose:

    * a wrong password, an unknown user, a deactivated or locked account: one answer
      (:class:`AuthenticationFailed`), with the same argon2 work done in each case;
    * an account with TOTP and no code sent: :class:`SecondFactorRequired`, *whether the
      password was right or not* (a wrong one still counts as a failure), so the answer
      never confirms a password on its own;
    * a suspended account: :class:`AccountSuspended` (whom to contact) only after the
      password, and the code where there is one, were right; otherwise the answer above.
    """
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
        burn_verification(password)
        raise failed("inactive")
    if user.locked_until is not None and user.locked_until > now:
        burn_verification(password)
        raise failed("locked")
    password_ok = verify_password(user.password_hash, password)
    if user.totp_enabled and otp is None:
        if not password_ok:
            _count_failure(session, user, now)
        audit.record(
            session,
            None,
            "auth.login",
            outcome="otp_needed",
            object_type="user",
            object_id=user.id,
            username=identifiers.audit_username(user.id, user.username, user.role),
            org_id=user.org_id,
            # For the auditor only: the caller gets the same answer either way.
            details={} if password_ok else {"reason": "bad password"},
            client_ip=client_ip,
        )
        raise SecondFactorRequired
    # The code is checked only with the right password: a wrong one must not spend a step.
    accepted = password_ok and (
        not user.totp_enabled or (otp is not None and _accept_totp(user, otp, crypto))
    )
    if not accepted:
        _count_failure(session, user, now)
        raise failed("bad password or code")
    if user.suspended_at is not None:
        # The right credentials: the owner may learn why they cannot get in, and whom to ask.
        audit.record(
            session,
            None,
            "auth.login",
            outcome="failed",
            object_type="user",
            object_id=user.id,
            username=identifiers.audit_username(user.id, user.username, user.role),
            org_id=user.org_id,
            details={"reason": "suspended"},
            client_ip=client_ip,
        )
        user.failed_logins = 0
        raise AccountSuspended(security_contact(session, user))
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


def _count_failure(session: Session, user: User, now: dt.datetime) -> None:
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


@dataclass(frozen=True)
class SecurityContact:
    """Whom a suspended user should ask: the security officers nearest their organisation."""

    org_name: str
    officers: tuple[str, ...]


def security_contact(session: Session, user: User) -> SecurityContact:
    """The active security officers of the deepest organisation above (or at) ``user``'s
    that has any; the user's own organisation's name when none has."""
    own = session.get(UnionOrg, user.org_id)
    own_path = own.path if own else ""
    rows = session.execute(
        select(User.display_name, UnionOrg.name, UnionOrg.path)
        .join(UnionOrg, UnionOrg.id == User.org_id)
        .where(
            User.role == Role.SECURITY_OFFICER,
            User.is_active.is_(True),
            User.suspended_at.is_(None),
        )
    ).all()
    covering = [r for r in rows if own_path.startswith(r.path)]
    if not covering:
        return SecurityContact(own.name if own else "", ())
    deepest = max(len(r.path) for r in covering)
    nearest = sorted(r for r in covering if len(r.path) == deepest)
    return SecurityContact(nearest[0].name, tuple(r.display_name for r in nearest))


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
    """For a lost phone: the user enrols again at the next log-in.

    Every session and token of the account ends: whoever holds the lost phone may hold a
    logged-in browser too, and the next log-in must go through enrolment.
    """
    user.totp_secret_enc = None
    user.totp_enabled = False
    user.totp_last_step = None
    revoke_all_sessions(session, user.id)
    audit.record(
        session,
        actor,
        "auth.totp_reset",
        object_type="user",
        object_id=user.id,
        username=None if actor else "cli",
        org_id=None if actor else user.org_id,
    )


class WrongPassword(KeepsTransaction):
    """The current password given with a change was wrong (counted like a failed log-in)."""


def change_password(
    session: Session,
    principal: Principal,
    *,
    current: str,
    new: str,
    client_ip: str = "",
) -> None:
    """The caller changes their own password; it needs the current one.

    Every other session and token of the account ends; the one making the change stays.
    A wrong current password counts towards the lock-out like a failed log-in, so a
    stolen session cannot be used to guess it.
    """
    user = session.get(User, principal.user_id)
    if user is None:  # pragma: no cover (the principal was just resolved)
        raise UserError("no such account")
    now = utcnow()
    if user.locked_until is not None and user.locked_until > now:
        burn_verification(current)
        ok = False
    else:
        ok = verify_password(user.password_hash, current)
    if not ok:
        _count_failure(session, user, now)
        audit.record(
            session,
            principal,
            "user.password_change",
            outcome="failed",
            object_type="user",
            object_id=user.id,
            details={"reason": "wrong current password"},
            client_ip=client_ip,
        )
        raise WrongPassword("the current password is wrong")
    if new == current:
        raise UserError("the new password must differ from the current one")
    _store_password(session, user, new, keep_session=principal.session_id)
    audit.record(
        session,
        principal,
        "user.password_change",
        object_type="user",
        object_id=user.id,
        client_ip=client_ip,
    )


def set_password(session: Session, actor: Principal | None, user: User, new: str) -> None:
    """Someone else sets ``user``'s password: an administrator under the escalation rules
    (``security.users.reset_password``) or the operator's CLI (``actor`` None). Every
    session and token of the account ends, the lock-out is lifted. A member whose password
    the operator set is told so (a notice)."""
    _store_password(session, user, new, keep_session=None)
    audit.record(
        session,
        actor,
        "user.password_reset",
        object_type="user",
        object_id=user.id,
        username=None if actor else "cli",
        org_id=None if actor else user.org_id,
    )
    if user.member_id is not None:
        from smartunion.notifications.service import NoticeKind, notify

        notify(session, user.member_id, NoticeKind.PASSWORD_SET)


def _store_password(session: Session, user: User, new: str, *, keep_session: int | None) -> None:
    # Hashed (and checked against the policy) before anything is written.
    user.password_hash = hash_password(new, username=user.username)
    user.password_changed_at = utcnow()
    user.failed_logins = 0
    user.locked_until = None
    revoke_all_sessions(session, user.id, keep=keep_session)


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


def revoke_all_sessions(session: Session, user_id: int, *, keep: int | None = None) -> None:
    """After a role change, deactivation, password or TOTP change: old sessions and tokens
    must not carry on. ``keep``: the id of the session making a change of its own."""
    stmt = update(AuthSession).where(
        AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None)
    )
    if keep is not None:
        stmt = stmt.where(AuthSession.id != keep)
    session.execute(stmt.values(revoked_at=utcnow()))


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
