"""Every answer that carries a member record is a read, whatever the verb: charged to the
insider guard and audited as one. Existence answers and misses are on the record too."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from smartunion.db import Database
from smartunion.security.models import AccessCounter, AuditEvent, User
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import World
from tests.security.test_insider import PATHS


def _charged(db: Database, user: User, kind: str) -> int:
    with db.session() as s:
        total = s.scalar(
            select(func.sum(AccessCounter.records)).where(
                AccessCounter.user_id == user.id, AccessCounter.kind == kind
            )
        )
        return int(total or 0)


def _events(db: Database, action: str) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"].rsplit("/", 1)[1]} if "$ref" in node else set()
        return found.union(*(_refs(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node))
    return set()


def _carries_members(schema: Any, components: dict[str, Any], seen: set[str]) -> bool:
    for name in _refs(schema) - seen:
        seen.add(name)
        if name in ("Member", "MemberListItem"):
            return True
        if _carries_members(components.get(name, {}), components, seen):
            return True
    return False


def test_every_route_that_answers_with_members_is_a_scraper_scenario(
    settings: Any, app_state: AppState
) -> None:
    """A new route answering with member records must join the guard's scenarios."""
    spec = create_app(settings, state=app_state).openapi()
    components = spec["components"]["schemas"]
    routes = {
        f"{method.upper()} {path}"
        for path, methods in spec["paths"].items()
        for method, op in methods.items()
        if any(
            _carries_members(answer, components, set())
            for code, answer in op.get("responses", {}).items()
            if code.startswith("2")
        )
    }
    covered = {
        "GET /api/v1/members": {"api_list", "api_search"},
        "GET /api/v1/members/{member_id}": {"api_detail"},
        "PATCH /api/v1/members/{member_id}": {"api_patch"},
        "POST /api/v1/members/lookup": {"api_lookup"},
        "POST /api/v1/members": {"api_create_existing"},
        "GET /api/v1/me/profile": set(),  # a member's own record: not a leak
    }
    assert routes == set(covered)
    assert set().union(*covered.values()) <= set(PATHS)


class TestWritesAnswerWithReads:
    def test_empty_patch_is_charged_and_audited_as_a_read(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        staff = world.users["staff_a"]
        r = client.patch(
            f"/api/v1/members/{world.member_a.id}", json={}, headers=world.auth("staff_a")
        )
        assert r.status_code == 200
        assert _charged(db, staff, "detail") == 1
        reads = _events(db, "member.read")
        assert [(e.object_id, e.details) for e in reads] == [
            (str(world.member_a.id), {"via": "member.update"})
        ]
        assert _events(db, "member.update") == []  # nothing changed

    def test_patch_that_changes_is_both(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        r = client.patch(
            f"/api/v1/members/{world.member_a.id}",
            json={"occupation": "钳工"},
            headers=world.auth("staff_a"),
        )
        assert r.status_code == 200
        assert len(_events(db, "member.update")) == 1
        assert len(_events(db, "member.read")) == 1
        assert _charged(db, world.users["staff_a"], "detail") == 1

    def test_create_answers_with_a_charged_read(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        from tests.factories import citizen_id

        body = {
            "name": "王新",
            "id_number": citizen_id("140105", "19920202", 555),
            "education": "college",
            "org_id": world.union_a.id,
            "occupation": "钳工",
        }
        r = client.post("/api/v1/members", json=body, headers=world.auth("staff_a"))
        assert r.status_code == 201
        assert _charged(db, world.users["staff_a"], "detail") == 1
        assert [e.details for e in _events(db, "member.read")] == [{"via": "member.create"}]


class TestExistence:
    def test_an_id_number_held_elsewhere_is_charged_audited_and_names_no_place(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        """Creating a member with an ID number held outside the caller's scope tells that
        the person is a member: charged and audited like a lookup hit, never saying where."""
        body = {
            "name": "李四",
            "id_number": world.id_b,
            "education": "college",
            "org_id": world.union_a.id,
            "occupation": "钳工",
        }
        r = client.post("/api/v1/members", json=body, headers=world.auth("staff_a"))
        assert r.status_code == 409
        text = r.text
        for where in (world.union_b.name, world.city_b.name, str(world.member_b.id)):
            assert where not in text
        events = _events(db, "member.exists")
        assert len(events) == 1
        assert events[0].actor_username == "staff_a"
        assert world.id_b not in str(events[0].details)
        assert _charged(db, world.users["staff_a"], "detail") == 1


class TestMissesAreAudited:
    def test_out_of_scope_member_probe(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        r = client.get(f"/api/v1/members/{world.member_b.id}", headers=world.auth("staff_a"))
        assert r.status_code == 404
        events = _events(db, "access.not_found")
        assert [(e.actor_username, e.object_type, e.object_id, e.outcome) for e in events] == [
            ("staff_a", "member", str(world.member_b.id), "not_found")
        ]

    def test_out_of_scope_org_user_and_patch_probes(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        headers = world.auth("orgadmin_a")
        assert client.get(f"/api/v1/orgs/{world.union_b.id}", headers=headers).status_code == 404
        assert client.get(
            f"/api/v1/users/{world.users['staff_b'].id}", headers=headers
        ).status_code in (404, 405)
        r = client.patch(
            f"/api/v1/members/{world.member_b.id}", json={"occupation": "x"}, headers=headers
        )
        assert r.status_code == 404
        kinds = [e.object_type for e in _events(db, "access.not_found")]
        assert "organisation" in kinds
        assert kinds.count("member") == 1

    def test_user_list_is_audited(self, client: TestClient, world: World, db: Database) -> None:
        r = client.get("/api/v1/users", headers=world.auth("orgadmin_a"))
        assert r.status_code == 200
        events = _events(db, "user.list")
        assert len(events) == 1
        assert events[0].details == {"count": len(r.json())}


def test_exact_statistics_queries_are_audited(
    client: TestClient, world: World, db: Database
) -> None:
    """Exact counts spend no ε and sit in no ledger: only the audit shows a differencing run."""
    r = client.get(
        "/api/v1/stats/members",
        params={"by": "gender", "org_id": world.city_a.id},
        headers=world.auth("analyst"),
    )
    assert r.status_code == 200
    events = _events(db, "stats.query")
    assert [(e.actor_username, e.details["org_id"]) for e in events] == [
        ("analyst", world.city_a.id)
    ]
