"""Insider-leak guard (防内部人员批量窃取): quotas, baselines, alerts and suspension.

Every service that hands out personal-data records charges them here *before* they leave,
in the same transaction. The guard keeps per user-hour counters and compares today's volume
with the user's own normal daily volume (the 95th percentile of their last 30 active days,
or their role's median when they have under five days of history, never below a floor):

- above normal + ``alert_margin``: a warning alert for the security officer;
- a request that would take today's total above normal + ``hard_margin``: refused, the user
  suspended (all sessions revoked, log-in refused) and a critical alert raised — so a
  scraper gets at most ``hard_margin`` records past their normal volume;
- above the absolute daily quota: refused;
- outside working hours (local time) more than ``off_hours_alert`` records, or more than
  ``reveals_alert`` reveals a day: alerts.

Counts live in the database, so the limits hold across app servers and restarts.
"""

from __future__ import annotations

import datetime as dt
import statistics
from dataclasses import dataclass
from typing import Literal
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from smartunion.config import Settings
from smartunion.db import side_transaction, utcnow
from smartunion.errors import KeepsTransaction
from smartunion.security import audit
from smartunion.security.models import AccessCounter, AuthSession, SecurityAlert, User
from smartunion.security.permissions import Role
from smartunion.security.principal import Principal

Kind = Literal["read", "reveal", "export"]
LOCAL_TZ = ZoneInfo("Asia/Shanghai")


class AccessSuspended(KeepsTransaction):
    """The account is suspended pending the security officer's review."""


class QuotaExceeded(KeepsTransaction):
    pass


@dataclass(frozen=True)
class GuardPolicy:
    min_normal_daily: int = 100
    alert_margin: int = 100
    hard_margin: int = 200
    daily_read_quota: int = 3000
    daily_export_quota: int = 5000
    reveals_alert: int = 10
    off_hours_alert: int = 50
    work_hours: tuple[int, int] = (7, 21)
    history_days: int = 30
    min_history_days: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> GuardPolicy:
        return cls(
            min_normal_daily=settings.guard_min_normal_daily,
            alert_margin=settings.guard_alert_margin,
            hard_margin=settings.guard_hard_margin,
            daily_read_quota=settings.daily_read_quota,
            daily_export_quota=settings.daily_export_quota,
        )


def local_day(at: dt.datetime) -> dt.date:
    return at.astimezone(LOCAL_TZ).date()


def _totals_today(session: Session, user_id: int, day: dt.date) -> dict[str, int]:
    rows = session.execute(
        select(AccessCounter.kind, func.sum(AccessCounter.records))
        .where(AccessCounter.user_id == user_id, AccessCounter.day == day)
        .group_by(AccessCounter.kind)
    ).all()
    return {str(kind): int(total or 0) for kind, total in rows}


def _off_hours_today(session: Session, user_id: int, day: dt.date, policy: GuardPolicy) -> int:
    rows = session.execute(
        select(AccessCounter.hour, AccessCounter.records).where(
            AccessCounter.user_id == user_id,
            AccessCounter.day == day,
            AccessCounter.kind == "read",
        )
    ).all()
    start, end = policy.work_hours
    return sum(int(n) for hour, n in rows if not start <= hour.astimezone(LOCAL_TZ).hour < end)


def _daily_history(
    session: Session, *, day: dt.date, policy: GuardPolicy, user_id: int | None, role: str
) -> dict[int, list[int]]:
    """Per-user lists of daily read totals over the history window, today excluded."""
    since = day - dt.timedelta(days=policy.history_days)
    stmt = (
        select(AccessCounter.user_id, AccessCounter.day, func.sum(AccessCounter.records))
        .where(
            AccessCounter.kind == "read",
            AccessCounter.day >= since,
            AccessCounter.day < day,
        )
        .group_by(AccessCounter.user_id, AccessCounter.day)
    )
    stmt = (
        stmt.where(AccessCounter.user_id == user_id)
        if user_id is not None
        else stmt.where(AccessCounter.role == role)
    )
    history: dict[int, list[int]] = {}
    for uid, _, total in session.execute(stmt):
        history.setdefault(int(uid), []).append(int(total or 0))
    return history


def _p95(values: list[int]) -> int:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


# The baseline depends only on days before today: compute it once per user, policy and day
# instead of on every read (it was most of the guard's cost per request).
_normal_cache: dict[tuple[int, str, GuardPolicy, dt.date], int] = {}


def normal_daily_volume(
    session: Session, principal: Principal, policy: GuardPolicy, day: dt.date
) -> int:
    key = (principal.user_id, str(principal.role), policy, day)
    cached = _normal_cache.get(key)
    if cached is None:
        if len(_normal_cache) > 50_000:
            _normal_cache.clear()
        cached = _normal_cache[key] = _compute_normal(session, principal, policy, day)
    return cached


def clear_baselines() -> None:
    """Forget cached baselines (tests rewrite history; production never does)."""
    _normal_cache.clear()


def _compute_normal(
    session: Session, principal: Principal, policy: GuardPolicy, day: dt.date
) -> int:
    own = _daily_history(
        session, day=day, policy=policy, user_id=principal.user_id, role=str(principal.role)
    ).get(principal.user_id, [])
    if len(own) >= policy.min_history_days:
        baseline = _p95(own)
    else:
        peers = _daily_history(
            session, day=day, policy=policy, user_id=None, role=str(principal.role)
        )
        peer_levels = [_p95(days) for uid, days in peers.items() if uid != principal.user_id]
        baseline = int(statistics.median(peer_levels)) if peer_levels else 0
    return min(max(baseline, policy.min_normal_daily), policy.daily_read_quota)


def _alert_once(
    session: Session,
    principal: Principal,
    kind: str,
    severity: str,
    message: str,
    day: dt.date,
    details: dict[str, object],
) -> None:
    start = dt.datetime.combine(day, dt.time(), LOCAL_TZ)
    exists = session.scalar(
        select(SecurityAlert.id).where(
            SecurityAlert.user_id == principal.user_id,
            SecurityAlert.kind == kind,
            SecurityAlert.created_at >= start,
        )
    )
    if exists is None:
        session.add(
            SecurityAlert(
                user_id=principal.user_id,
                kind=kind,
                severity=severity,
                message=message,
                details=details,
            )
        )
        audit.record(
            session,
            principal,
            "security.alert",
            object_type="user",
            object_id=principal.user_id,
            details={"kind": kind, "severity": severity, **details},
        )


def suspend(session: Session, principal: Principal, reason: str) -> None:
    now = utcnow()
    session.execute(
        update(User)
        .where(User.id == principal.user_id)
        .values(suspended_at=now, suspended_reason=reason[:200])
    )
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == principal.user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now)
    )
    audit.record(
        session,
        principal,
        "security.suspend",
        object_type="user",
        object_id=principal.user_id,
        details={"reason": reason},
    )


def _hour(at: dt.datetime) -> dt.datetime:
    return at.replace(minute=0, second=0, microsecond=0)


def _count(
    session: Session,
    principal: Principal,
    kind: Kind,
    records: int,
    *,
    now: dt.datetime,
    off_hours_of: GuardPolicy | None,
) -> tuple[dict[str, int], int]:
    """Add ``records`` to this hour's counter and return today's totals (with them) and,
    given ``off_hours_of``, today's off-hours reads, in a transaction of its own that
    commits at once.

    The counter is taken before the records leave and holds across concurrent requests and
    server processes: two parallel requests of one user see each other's charges (the
    upsert waits on the other's row on PostgreSQL, on the write lock on SQLite). A counter
    read first and written at the end would let parallel requests pass the limit together.
    """
    day = local_day(now)
    values = {
        "user_id": principal.user_id,
        "role": str(principal.role),
        "hour": _hour(now),
        "day": day,
        "kind": kind,
        "records": records,
    }
    table = AccessCounter.__table__
    with side_transaction(session) as side:
        dialect = side.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        stmt = insert(table).values(**values)  # type: ignore[arg-type]
        stmt = stmt.on_conflict_do_update(
            index_elements=["user_id", "hour", "kind"],
            set_={"records": table.c.records + stmt.excluded.records},
        )
        side.execute(stmt)
        totals = _totals_today(side, principal.user_id, day)
        off = (
            _off_hours_today(side, principal.user_id, day, off_hours_of)
            if off_hours_of is not None
            else 0
        )
    return totals, off


def _uncount(
    session: Session, principal: Principal, kind: Kind, records: int, *, now: dt.datetime
) -> None:
    """Take back a refused request's charge (from the hour it went to): refused records
    were not served."""
    remaining = AccessCounter.records - records
    with side_transaction(session) as side:
        side.execute(
            update(AccessCounter)
            .where(
                AccessCounter.user_id == principal.user_id,
                AccessCounter.hour == _hour(now),
                AccessCounter.kind == kind,
            )
            .values(records=case((remaining > 0, remaining), else_=0))
        )


def charge(session: Session, principal: Principal, *, kind: Kind, records: int) -> None:
    """Account for ``records`` personal-data records about to be served; raise to refuse.

    The policy comes with the session (``Database(guard_policy=...)``), defaults otherwise.
    """
    policy: GuardPolicy = session.info.get("guard_policy") or GuardPolicy()
    if principal.role is Role.MEMBER or (records <= 0 and kind != "reveal"):
        return  # a member reading their own record is not a leak
    suspended = session.scalar(select(User.suspended_at).where(User.id == principal.user_id))
    if suspended is not None:
        raise AccessSuspended("account suspended pending security review")
    charged = max(records, 1) if kind == "reveal" else records
    now = utcnow()
    day = local_day(now)
    start, end = policy.work_hours
    after_hours = not start <= now.astimezone(LOCAL_TZ).hour < end
    totals, off = _count(
        session,
        principal,
        kind,
        charged,
        now=now,
        # The off-hours sum is another query under the write lock: only when it matters.
        off_hours_of=policy if kind == "read" and after_hours else None,
    )
    if kind == "read":
        normal = normal_daily_volume(session, principal, policy, day)
        after = totals.get("read", 0)
        if after > normal + policy.hard_margin:
            suspend(session, principal, f"read {after} records today; normal is {normal}")
            _alert_once(
                session,
                principal,
                "bulk_read_suspended",
                "critical",
                f"读取 {after} 条会员记录，超出正常量 {normal} 条的硬上限，账号已暂停",
                day,
                {"today": after, "normal": normal},
            )
            raise AccessSuspended("account suspended: far more records than usual")
        if after > policy.daily_read_quota:
            _uncount(session, principal, kind, charged, now=now)
            _alert_once(
                session,
                principal,
                "quota",
                "warning",
                "达到每日个人信息读取限额",
                day,
                {"today": after, "quota": policy.daily_read_quota},
            )
            raise QuotaExceeded(f"daily quota of {policy.daily_read_quota} records reached")
        if after > normal + policy.alert_margin:
            _alert_once(
                session,
                principal,
                "bulk_read",
                "warning",
                f"今日已读取 {after} 条会员记录，高于其正常量 {normal} 条",
                day,
                {"today": after, "normal": normal},
            )
        if after_hours and off > policy.off_hours_alert:
            _alert_once(
                session,
                principal,
                "off_hours",
                "warning",
                f"非工作时间读取 {off} 条会员记录",
                day,
                {"off_hours": off},
            )
    elif kind == "reveal":
        if totals.get("reveal", 0) > policy.reveals_alert:
            _alert_once(
                session,
                principal,
                "reveals",
                "warning",
                f"今日查看明文超过 {policy.reveals_alert} 次",
                day,
                {"today": totals.get("reveal", 0)},
            )
    elif totals.get("export", 0) > policy.daily_export_quota:
        _uncount(session, principal, kind, charged, now=now)
        raise QuotaExceeded(f"daily export quota of {policy.daily_export_quota} records reached")
