"""Residue of personal data in the audit trail (issue 7, item 10).

ID numbers and phone numbers typed as a search term, used as an export filter, or a
password typed into the username field, must never be stored verbatim: searches by number
go to the blind-index lookup, and the audit keeps a masked form and a keyed digest.
"""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartunion.db import Database
from smartunion.security import identifiers
from smartunion.security.models import AuditEvent, ExportRequest
from tests.factories import World
from tests.web.test_pages import login_as, post_login

SECRET_PASSWORD = "Tiger-Lily-Mine-47"


def _trail(db: Database) -> str:
    """Everything the audit trail holds, as one text."""
    with db.session() as s:
        return json.dumps(
            [
                [e.actor_username, e.object_id, e.details]
                for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
            ],
            ensure_ascii=False,
        )


def _spaced_phone(phone: str) -> str:
    return f"{phone[:3]} {phone[3:7]} {phone[7:]}"


class TestSearchByNumber:
    @pytest.mark.parametrize("kind", ["id_number", "phone", "spaced_phone", "lower_x"])
    def test_api_search_uses_the_blind_index_and_stores_no_number(
        self, client: TestClient, world: World, db: Database, kind: str
    ) -> None:
        term = {
            "id_number": world.id_a,
            "phone": world.phone_a,
            "spaced_phone": _spaced_phone(world.phone_a),
            "lower_x": world.id_a.lower(),
        }[kind]
        r = client.get("/api/v1/members", params={"q": term}, headers=world.auth("staff_a"))
        assert r.status_code == 200, r.text
        assert [m["id"] for m in r.json()["items"]] == [world.member_a.id]
        trail = _trail(db)
        assert world.id_a not in trail
        assert world.phone_a not in trail
        assert term not in trail
        with db.session() as s:
            event = s.scalars(select(AuditEvent).where(AuditEvent.action == "member.list")).one()
            stored = event.details["filters"]["q"]
            assert stored["kind"] == ("id_number" if "id" in kind or "x" in kind else "phone")
            assert "*" in stored["masked"]
            assert len(stored["digest"]) == 24

    def test_other_branch_finds_nothing_by_number(self, client: TestClient, world: World) -> None:
        r = client.get("/api/v1/members", params={"q": world.id_a}, headers=world.auth("staff_b"))
        assert r.status_code == 200
        assert r.json()["items"] == []

    def test_console_search_stores_no_number(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/console/members", params={"q": world.phone_a})
        assert r.status_code == 200
        assert world.phone_a not in _trail(db)

    def test_name_search_keeps_working_and_is_masked(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        r = client.get("/api/v1/members", params={"q": "张三"}, headers=world.auth("staff_a"))
        assert [m["id"] for m in r.json()["items"]] == [world.member_a.id]
        trail = _trail(db)
        assert "张三" not in trail
        assert '"masked": "**"' in trail

    def test_same_term_same_digest(self, client: TestClient, world: World, db: Database) -> None:
        for term in (world.phone_a, _spaced_phone(world.phone_a)):
            client.get("/api/v1/members", params={"q": term}, headers=world.auth("staff_a"))
        with db.session() as s:
            events = s.scalars(select(AuditEvent).where(AuditEvent.action == "member.list"))
            assert len({e.details["filters"]["q"]["digest"] for e in events}) == 1


class TestExportFilter:
    def test_number_as_export_filter_is_stored_as_a_lookup(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        r = client.post(
            "/api/v1/exports",
            json={"org_id": world.city_a.id, "format": "csv", "filters": {"q": world.phone_a}},
            headers=world.auth("staff_a"),
        )
        assert r.status_code == 201, r.text
        assert world.phone_a not in r.text
        with db.session() as s:
            request = s.get_one(ExportRequest, r.json()["id"])
            assert world.phone_a not in json.dumps(request.filters)
            assert request.record_count == 1
        assert world.phone_a not in _trail(db)
        download = client.get(
            f"/api/v1/exports/{r.json()['id']}/download", headers=world.auth("staff_a")
        )
        assert download.status_code == 200
        assert world.member_a.member_no in download.content.decode("utf-8-sig")

    def test_console_export_filter_is_stored_as_a_lookup(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        from tests.web.test_pages import csrf_from

        login_as(client, world, "staff_a")
        token = csrf_from(client, "/console/members")
        r = client.post(
            "/console/exports",
            data={"q": world.id_a, "format": "csv", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code in (200, 303), r.text
        with db.session() as s:
            request = s.scalars(select(ExportRequest).order_by(ExportRequest.id.desc())).first()
            assert request is not None
            assert request.filters["lookup"]["kind"] == "id_number"
            assert world.id_a not in json.dumps(request.filters)
        assert world.id_a not in _trail(db)

    def test_malformed_lookup_answers_422(self, client: TestClient, world: World) -> None:
        r = client.post(
            "/api/v1/exports",
            json={"org_id": world.city_a.id, "filters": {"lookup": {"kind": "name"}}},
            headers=world.auth("staff_a"),
        )
        assert r.status_code == 422


class TestPasswordInUsernameField:
    def test_api_login(self, client: TestClient, world: World, db: Database) -> None:
        r = client.post("/api/v1/auth/token", data={"username": SECRET_PASSWORD, "password": "x"})
        assert r.status_code == 401
        trail = _trail(db)
        assert SECRET_PASSWORD not in trail
        with db.session() as s:
            event = s.scalars(
                select(AuditEvent).where(
                    AuditEvent.action == "auth.login", AuditEvent.outcome == "failed"
                )
            ).one()
            assert event.actor_username.startswith("?")

    def test_console_login(self, client: TestClient, world: World, db: Database) -> None:
        r = post_login(client, SECRET_PASSWORD, "x")
        assert r.status_code in (200, 401)
        assert SECRET_PASSWORD not in _trail(db)

    def test_known_username_is_still_recorded(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        client.post("/api/v1/auth/token", data={"username": "staff_a", "password": "wrong"})
        with db.session() as s:
            event = s.scalars(select(AuditEvent).where(AuditEvent.action == "auth.login")).one()
            assert event.actor_username == "staff_a"


class TestFreeText:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("电话13812345678已更新", "电话138****5678已更新"),
            ("号码 138-1234-5678", "号码 138****5678"),
            ("身份证140105198503121237核对", "身份证140105********1237核对"),
            ("会议 2026-12-01 08:00", "会议 2026-12-01 08:00"),
            ("编号T000000936", "编号T000000936"),
        ],
    )
    def test_redact_text(self, text: str, expected: str) -> None:
        assert identifiers.redact_text(text) == expected

    def test_reveal_reason_with_a_phone_is_masked(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        r = client.post(
            f"/api/v1/members/{world.member_a.id}/reveal",
            json={"fields": ["phone"], "reason": f"回电 {world.phone_b} 核实"},
            headers=world.auth("staff_a"),
        )
        assert r.status_code == 200, r.text
        assert world.phone_b not in _trail(db)
