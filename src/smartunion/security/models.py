"""Staff and member accounts, sessions/tokens, and the audit trail."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from smartunion.db import Base, TimestampMixin, UTCDateTime, str_enum, utcnow
from smartunion.security.fields import encrypted_field
from smartunion.security.permissions import Role


class User(TimestampMixin, Base):
    """A login: staff of some organisation, or a member (role ``member``, linked to a Member)."""

    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(60), default="")
    password_hash: Mapped[str] = mapped_column(String(200))
    role: Mapped[Role] = mapped_column(str_enum(Role, "role"))
    org_id: Mapped[int] = mapped_column(ForeignKey("union_org.id"), index=True)
    member_id: Mapped[int | None] = mapped_column(ForeignKey("member.id"), unique=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    last_login_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    password_changed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Set by the insider-leak guard; only a security officer lifts it.
    suspended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    suspended_reason: Mapped[str] = mapped_column(String(200), default="", server_default="")
    # A security officer's restore (security.guard.grant_allowance): weighted records of
    # room past the guard's hard margin, until a time. Read with the suspension, one query.
    guard_allowance: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    guard_allowance_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Who made this account and who last changed its role or organisation: a two-person
    # rule's second person must be none of them (security.independence).
    created_by_id: Mapped[int | None] = mapped_column(Integer)
    role_changed_by_id: Mapped[int | None] = mapped_column(Integer)
    org_changed_by_id: Mapped[int | None] = mapped_column(Integer)
    # TOTP second factor (RFC 6238); the secret is encrypted like any personal field.
    totp_secret_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    totp_enabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)


TOTP_SECRET = encrypted_field(User, "totp_secret_enc", None, "user.totp_secret")


class AuthSession(Base):
    """A browser session (cookie) or API bearer token. Only a hash of the secret is stored."""

    __tablename__ = "auth_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # "cookie" | "bearer"
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    client_ip: Mapped[str] = mapped_column(String(45), default="")


class AuditEvent(Base):
    """One append-only, sealed and chained audit event (审计日志); see ``security.audit``.

    Never holds sensitive plaintext.
    """

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_event_actor_user_id_id", "actor_user_id", "id"),
        Index("ix_audit_event_object", "object_type", "object_id"),
        # The sealer's work list: small, because it is sealed within a second.
        Index(
            "ix_audit_event_unsealed",
            "id",
            sqlite_where=text("seq IS NULL"),
            postgresql_where=text("seq IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_user_id: Mapped[int | None] = mapped_column(Integer)
    actor_username: Mapped[str] = mapped_column(String(64), default="")
    actor_role: Mapped[str] = mapped_column(String(24), default="")
    actor_org_id: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(40), index=True)
    object_type: Mapped[str] = mapped_column(String(40), default="")
    object_id: Mapped[str] = mapped_column(String(64), default="")
    outcome: Mapped[str] = mapped_column(String(12), default="ok")
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client_ip: Mapped[str] = mapped_column(String(45), default="")
    alg: Mapped[str] = mapped_column(String(12), default="hmac-sha256")
    # Append seal (own content, random uid); null only on events from before it existed.
    uid: Mapped[str | None] = mapped_column(String(32), unique=True)
    mac: Mapped[str | None] = mapped_column(String(64))
    # Chain position and seals: set by the sealer after the event's transaction committed.
    seq: Mapped[int | None] = mapped_column(BigInteger, unique=True)
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64), unique=True)


class AccessCounter(Base):
    """Personal-data records served to one user in one UTC hour, by kind (list, detail,
    reveal, export, export_ok: see ``security.guard``).

    The insider-leak guard counts here rather than in the audit trail: one upserted row per
    user-hour answers "how much today, how much usually" without scanning events.
    """

    __tablename__ = "access_counter"
    __table_args__ = (
        UniqueConstraint("user_id", "hour", "kind"),
        Index("ix_access_counter_role_day", "role", "day"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(Integer)
    role: Mapped[str] = mapped_column(String(24))
    hour: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    day: Mapped[dt.date] = mapped_column(Date)  # local (Asia/Shanghai) date of the hour
    kind: Mapped[str] = mapped_column(String(10))
    records: Mapped[int] = mapped_column(Integer, default=0)


class SecurityAlert(TimestampMixin, Base):
    """An alert for the security officer (安全告警): bulk reading, off-hours access, …"""

    __tablename__ = "security_alert"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(24))
    severity: Mapped[str] = mapped_column(String(10))  # warning | critical
    message: Mapped[str] = mapped_column(String(300))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    resolved_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    resolution: Mapped[str] = mapped_column(String(300), default="")


class ExportRequest(TimestampMixin, Base):
    """A request to export personal data (数据导出审批). Over the threshold, or unmasked, it
    waits for a second authorised person; the file is produced only on download."""

    __tablename__ = "export_request"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    uid: Mapped[str] = mapped_column(String(32), unique=True)  # printed in the watermark
    requested_by: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    dataset: Mapped[str] = mapped_column(String(24))  # "members"
    org_id: Mapped[int] = mapped_column(ForeignKey("union_org.id"))
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    file_format: Mapped[str] = mapped_column(String(8))  # csv | xlsx
    unmasked: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(String(300), default="")
    record_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(12))  # pending|approved|rejected|downloaded
    decided_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    decision_note: Mapped[str] = mapped_column(String(300), default="")
    downloaded_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class KeyFingerprint(Base):
    """A key the database's data was written with (``security.keycheck``): its kind
    (signing, data, blind), version and a fingerprint, never the key."""

    __tablename__ = "key_fingerprint"

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
