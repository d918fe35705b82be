"""Privilege escalation: nobody hands out more than they hold, nor rises by themselves."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartunion.db import Database
from smartunion.security.models import AuditEvent
from tests.factories import World

STRONG = "Tiger-Lily-Mine-47"


def _create(client: TestClient, world: World, who: str, role: str, org_id: int) -> int:
    r = client.post(
        "/api/v1/users",
        json={"username": f"u_{role}", "password": STRONG, "role": role, "org_id": org_id},
        headers=world.auth(who),
    )
    return r.status_code


@pytest.mark.parametrize("role", ["system_admin", "auditor", "security_officer"])
def test_org_admin_cannot_create_higher_or_separate_roles(
    client: TestClient, world: World, role: str
) -> None:
    assert _create(client, world, "orgadmin_a", role, world.union_a.id) == 403


def test_org_admin_creates_staff_in_own_subtree(client: TestClient, world: World) -> None:
    assert _create(client, world, "orgadmin_a", "staff", world.union_a.id) == 201
    assert _create(client, world, "orgadmin_a", "analyst", world.city_a.id) == 404  # above it


def test_staff_cannot_manage_users(client: TestClient, world: World) -> None:
    assert _create(client, world, "staff_a", "staff", world.union_a.id) == 403
    r = client.patch(
        f"/api/v1/users/{world.users['staff_a'].id}",
        json={"role": "org_admin"},
        headers=world.auth("staff_a"),
    )
    assert r.status_code == 403


def test_nobody_changes_their_own_role(client: TestClient, world: World) -> None:
    r = client.patch(
        f"/api/v1/users/{world.users['orgadmin_a'].id}",
        json={"role": "staff"},
        headers=world.auth("orgadmin_a"),
    )
    assert r.status_code == 422


def test_org_admin_cannot_touch_a_system_admin(client: TestClient, world: World) -> None:
    r = client.patch(
        f"/api/v1/users/{world.users['admin'].id}",
        json={"is_active": False},
        headers=world.auth("orgadmin_b"),
    )
    assert r.status_code in (403, 404)  # the province admin sits above city B: 404


def test_role_change_is_audited_and_kills_old_tokens(
    client: TestClient, world: World, db: Database
) -> None:
    target = world.users["staff_a"].id
    r = client.patch(
        f"/api/v1/users/{target}", json={"role": "analyst"}, headers=world.auth("admin")
    )
    assert r.status_code == 200
    assert r.json()["role"] == "analyst"
    assert client.get("/api/v1/auth/me", headers=world.auth("staff_a")).status_code == 401
    with db.session() as s:
        event = s.scalar(select(AuditEvent).where(AuditEvent.action == "user.role_change"))
        assert event is not None
        assert event.details == {"from": "staff", "to": "analyst"}


def test_member_cannot_reach_staff_endpoints(client: TestClient, world: World) -> None:
    headers = world.auth("member_a")
    for method, path in [
        ("GET", "/api/v1/members"),
        ("GET", "/api/v1/users"),
        ("GET", "/api/v1/exports"),
        ("GET", "/api/v1/security/alerts"),
        ("GET", "/api/v1/stats/members"),
        ("GET", "/api/v1/privacy/requests"),
        ("GET", "/api/v1/orgs"),
    ]:
        r = client.request(method, path, headers=headers)
        assert r.status_code == 403, path


class TestUnionLinkedToEnterprise:
    """A union created for an enterprise may only take an enterprise of the caller's scope,
    registered under the new union's parent."""

    def _body(self, world: World, enterprise_id: int) -> dict[str, object]:
        from tests.factories import union_code

        return {
            "code": union_code("140213", True),
            "name": "新企业工会",
            "level": "grassroots",
            "kind": "enterprise",
            "region_code": "140213",
            "parent_id": world.city_b.id,
            "enterprise_id": enterprise_id,
        }

    def test_enterprise_of_another_branch_is_refused(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        r = client.post(
            "/api/v1/orgs", json=self._body(world, world.ent_a.id), headers=world.auth("orgadmin_b")
        )
        assert r.status_code == 404, r.text
        with db.session() as s:
            assert s.scalar(select(AuditEvent).where(AuditEvent.action == "org.create")) is None

    def test_enterprise_of_own_branch_is_linked(self, client: TestClient, world: World) -> None:
        r = client.post(
            "/api/v1/orgs", json=self._body(world, world.ent_b.id), headers=world.auth("orgadmin_b")
        )
        assert r.status_code == 201, r.text
        assert r.json()["enterprise_id"] == world.ent_b.id
