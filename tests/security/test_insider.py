"""A simulated insider scrapes member records in bursts, as in the documented leaks (an
employee paging through hundreds of thousands of records). The guard must stop them within
200 records past their normal volume, alert the security officer and suspend the account."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from smartunion.db import Database
from smartunion.members.models import Member
from smartunion.security import guard
from smartunion.security.crypto import FieldCrypto
from smartunion.security.guard import GuardPolicy, local_day
from smartunion.security.models import AccessCounter, SecurityAlert, User
from tests.factories import PASSWORD, World, bulk_members

HARD_MARGIN = GuardPolicy().hard_margin
# Tests fix the clock to a working morning in Beijing; the off-hours test moves it.
WORK_MORNING = dt.datetime(2026, 11, 27, 2, 0, tzinfo=dt.UTC)  # 10:00 Asia/Shanghai


@pytest.fixture(autouse=True)
def _working_hours(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(guard, "utcnow", lambda: WORK_MORNING)


def _history(s: Session, user: User, per_day: list[int]) -> None:
    today = local_day(WORK_MORNING)
    for back, records in enumerate(per_day, start=1):
        day = today - dt.timedelta(days=back)
        s.add(
            AccessCounter(
                user_id=user.id,
                role=str(user.role),
                kind="read",
                records=records,
                day=day,
                hour=dt.datetime.combine(day, dt.time(2), dt.UTC),
            )
        )


@pytest.fixture
def crowd(db: Database, crypto: FieldCrypto, world: World) -> World:
    with db.session() as s:
        bulk_members(s, crypto, world.union_a, world.ent_a, 600, "工人")
        # A normal working pattern: 30–60 records a day for two weeks.
        _history(s, world.users["staff_a"], [30, 45, 60, 40, 55, 35, 50, 60, 42, 38, 51, 47])
    return world


def _served_until_stopped(
    client: TestClient, headers: dict[str, str], page_size: int
) -> tuple[int, int]:
    served, page = 0, 1
    while True:
        r = client.get("/api/v1/members", params={"page": page, "size": page_size}, headers=headers)
        if r.status_code != 200:
            return served, r.status_code
        items = r.json()["items"]
        if not items:
            return served, 200
        served += len(items)
        page += 1


class TestInsider:
    def test_api_scraper_is_stopped_and_suspended(
        self, client: TestClient, crowd: World, db: Database
    ) -> None:
        headers = crowd.auth("staff_a")
        served, status = _served_until_stopped(client, headers, page_size=100)
        normal = GuardPolicy().min_normal_daily  # own p95 (60) is below the floor
        assert status == 403
        assert served - normal <= HARD_MARGIN
        assert served >= normal  # ordinary work was not blocked
        # The session is dead, log-in refused, and the security officer has been told.
        assert client.get("/api/v1/auth/me", headers=headers).status_code == 401
        login = client.post(
            "/api/v1/auth/token", data={"username": "staff_a", "password": PASSWORD}
        )
        assert login.status_code == 401
        alerts = client.get("/api/v1/security/alerts", headers=crowd.auth("officer")).json()
        kinds = {a["kind"]: a for a in alerts}
        assert "bulk_read_suspended" in kinds
        assert kinds["bulk_read_suspended"]["severity"] == "critical"
        assert "bulk_read" in kinds  # the earlier warning, past normal + alert margin

    def test_detail_by_detail_scraper_is_stopped(
        self, client: TestClient, crowd: World, db: Database
    ) -> None:
        with db.session() as s:
            ids = list(s.scalars(select(Member.id).where(Member.org_id == crowd.union_a.id)))
        headers = crowd.auth("staff_a")
        served = 0
        for member_id in ids:
            r = client.get(f"/api/v1/members/{member_id}", headers=headers)
            if r.status_code != 200:
                assert r.status_code == 403
                break
            served += 1
        assert served - GuardPolicy().min_normal_daily <= HARD_MARGIN
        assert served < len(ids)

    def test_officer_lifts_the_suspension(self, client: TestClient, crowd: World) -> None:
        _served_until_stopped(client, crowd.auth("staff_a"), page_size=100)
        alerts = client.get("/api/v1/security/alerts", headers=crowd.auth("officer")).json()
        critical = next(a for a in alerts if a["kind"] == "bulk_read_suspended")
        r = client.post(
            f"/api/v1/security/alerts/{critical['id']}/resolve",
            json={"note": "经核实为年度会员信息核对，已批准", "lift_suspension": True},
            headers=crowd.auth("officer"),
        )
        assert r.status_code == 200
        login = client.post(
            "/api/v1/auth/token", data={"username": "staff_a", "password": PASSWORD}
        )
        assert login.status_code == 200

    def test_ordinary_day_raises_nothing(self, client: TestClient, crowd: World) -> None:
        headers = crowd.auth("staff_a")
        for page in range(1, 4):
            r = client.get("/api/v1/members", params={"page": page, "size": 20}, headers=headers)
            assert r.status_code == 200
        alerts = client.get("/api/v1/security/alerts", headers=crowd.auth("officer")).json()
        raised = [a for a in alerts if a["id"] != crowd.alert_a_id]
        assert raised == []

    def test_heavy_users_baseline_is_their_own(
        self, client: TestClient, crowd: World, db: Database, crypto: FieldCrypto
    ) -> None:
        """Someone who normally reads ~400 a day is not stopped at 300."""
        with db.session() as s:
            staff_b = s.get(User, crowd.users["staff_b"].id)
            assert staff_b is not None
            _history(s, staff_b, [380, 420, 400, 390, 410, 405, 395])
            bulk_members(s, crypto, crowd.union_b, crowd.ent_b, 500, "职工")
        served, _ = _served_until_stopped(client, crowd.auth("staff_b"), page_size=100)
        assert served > 300
        assert served - 420 <= HARD_MARGIN


class TestAlerts:
    def test_off_hours_bulk_read(
        self, client: TestClient, crowd: World, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        night = dt.datetime(2026, 11, 27, 18, 30, tzinfo=dt.UTC)  # 02:30 in Beijing
        monkeypatch.setattr(guard, "utcnow", lambda: night)
        r = client.get("/api/v1/members", params={"size": 60}, headers=crowd.auth("staff_a"))
        assert r.status_code == 200
        alerts = client.get("/api/v1/security/alerts", headers=crowd.auth("officer")).json()
        assert "off_hours" in {a["kind"] for a in alerts}

    def test_many_reveals(self, client: TestClient, crowd: World) -> None:
        headers = crowd.auth("staff_a")
        for _ in range(GuardPolicy().reveals_alert + 1):
            r = client.post(
                f"/api/v1/members/{crowd.member_a.id}/reveal",
                json={"reason": "电话回访困难职工"},
                headers=headers,
            )
            assert r.status_code == 200
        alerts = client.get("/api/v1/security/alerts", headers=crowd.auth("officer")).json()
        assert "reveals" in {a["kind"] for a in alerts}

    def test_daily_quota(self, client: TestClient, crowd: World, db: Database) -> None:
        db.guard_policy = GuardPolicy(daily_read_quota=150, min_normal_daily=1000)
        db.sessionmaker = db.make_sessionmaker(
            db.sessionmaker.kw["bind"], join_transaction_mode="create_savepoint"
        )
        served, status = _served_until_stopped(client, crowd.auth("staff_a"), page_size=100)
        assert (served, status) == (100, 429)
        with db.session() as s:
            user = s.get(User, crowd.users["staff_a"].id)
            assert user is not None
            assert user.suspended_at is None  # a quota refuses, it does not suspend
            assert s.scalar(select(SecurityAlert).where(SecurityAlert.kind == "quota"))


def test_console_scraper_is_stopped(client: TestClient, crowd: World, db: Database) -> None:
    """The same insider through the staff console: list pages, then one record at a time."""
    client.cookies.set("su_session", crowd.cookies["staff_a"])
    served = 0
    page = 1
    while True:
        r = client.get("/console/members", params={"page": page, "size": 100})
        if r.status_code != 200:
            break
        rows = len(set(re.findall(r'href="/console/members/(\d+)"', r.text)))
        if rows == 0:
            break
        served += rows
        page += 1
    assert r.status_code == 403
    assert served - GuardPolicy().min_normal_daily <= HARD_MARGIN
    with db.session() as s:
        user = s.get(User, crowd.users["staff_a"].id)
        assert user is not None
        assert user.suspended_at is not None
    gone = client.get("/console/members", follow_redirects=False)
    assert gone.status_code == 303  # session revoked: back to the log-in page
