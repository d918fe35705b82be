"""Item 17: CSRF tokens are bound to the session, and a console page asked for from
another site is not served: nothing read, nothing charged to the victim's guard budget."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from smartunion.db import Database
from smartunion.security.models import AccessCounter, AuditEvent
from tests.factories import World
from tests.web.test_pages import CSRF_RE, audit_events, csrf_from, login_as


def _charged(db: Database, world: World, who: str) -> int:
    with db.session() as s:
        total = s.scalar(
            select(func.coalesce(func.sum(AccessCounter.records), 0)).where(
                AccessCounter.user_id == world.users[who].id
            )
        )
        return int(total or 0)


def _reads(db: Database) -> int:
    with db.session() as s:
        return int(
            s.scalar(
                select(func.count())
                .select_from(AuditEvent)
                .where(AuditEvent.action.like("member.%"))
            )
            or 0
        )


class TestSessionBoundToken:
    def test_another_browsers_pair_is_refused(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        # The attacker's own browser: a logged-in session, its su_csrf cookie and token.
        login_as(client, world, "staff_b")
        attacker_token = csrf_from(client, "/console")
        attacker_csrf = client.cookies["su_csrf"]
        # The victim's browser holds its own session; the attacker plants their su_csrf.
        client.cookies.clear()
        login_as(client, world, "staff_a")
        client.cookies.set("su_csrf", attacker_csrf)
        r = client.post(
            f"/console/members/{world.member_a.id}/reveal",
            data={
                "reason": "核对会员信息",
                "fields": ["id_number"],
                "csrf_token": attacker_token,
            },
        )
        assert r.status_code == 403
        assert world.id_a not in r.text
        assert audit_events(db, "member.reveal") == []

    def test_the_sessions_own_token_works(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        login_as(client, world, "staff_a")
        token = csrf_from(client, f"/console/members/{world.member_a.id}")
        r = client.post(
            f"/console/members/{world.member_a.id}/reveal",
            data={"reason": "核对会员信息", "fields": ["id_number"], "csrf_token": token},
        )
        assert r.status_code == 200
        assert world.id_a in r.text

    def test_a_new_session_needs_a_new_token(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        old = csrf_from(client, "/console")
        client.cookies.set("su_session", world.cookies["staff_b"])
        r = client.post("/logout", data={"csrf_token": old}, follow_redirects=False)
        assert r.status_code == 403


class TestCrossSiteRead:
    @pytest.mark.parametrize(
        "headers",
        [
            {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"},
            {"Sec-Fetch-Site": "same-site", "Sec-Fetch-Mode": "navigate"},
            {"Origin": "https://evil.example"},
        ],
    )
    @pytest.mark.parametrize(
        "path", ["/console/members?size=100", "/console/members/{member}", "/m/"]
    )
    def test_is_not_served_nor_charged(
        self,
        client: TestClient,
        world: World,
        db: Database,
        headers: dict[str, str],
        path: str,
    ) -> None:
        who = "member_a" if path.startswith("/m/") else "staff_a"
        login_as(client, world, who)
        url = path.format(member=world.member_a.id)
        before = _reads(db)
        r = client.get(url, headers=headers, follow_redirects=False)
        assert r.status_code == 403
        assert "张" not in r.text  # no member's name, masked or not
        assert _charged(db, world, who) == 0
        assert _reads(db) == before
        # The page offers to go on from this site (a same-origin request, served).
        assert f'href="{url.replace("&", "&amp;")}"' in r.text
        again = client.get(url, headers={"Sec-Fetch-Site": "same-origin"})
        assert again.status_code == 200
        assert _reads(db) > before

    @pytest.mark.parametrize(
        "headers",
        [{"Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}],
    )
    def test_own_site_typed_and_bookmarked_are_served(
        self, client: TestClient, world: World, db: Database, headers: dict[str, str]
    ) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/console/members", headers=headers)
        assert r.status_code == 200
        assert CSRF_RE.search(r.text)
        assert _charged(db, world, "staff_a") > 0

    def test_a_same_origin_header_is_served(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/console/members", headers={"Origin": "http://testserver"})
        assert r.status_code == 200
