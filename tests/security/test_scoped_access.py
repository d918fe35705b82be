"""Every API endpoint: 401 without a token, and nothing of branch A visible or changeable from
branch B. A new endpoint fails ``test_every_api_route_is_covered`` until it is listed here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient

from smartunion.web.app import create_app
from tests.factories import World, citizen_id, union_code


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str  # with {member}, {org}, {enterprise} placeholders filled from branch A
    body: Callable[[World], dict[str, Any]] | None = None
    form: bool = False
    # Whether branch B must get 404 (record in A) — False for lists and the caller's own data.
    scoped_record: bool = True


def _member_create(w: World) -> dict[str, Any]:
    return {
        "name": "王五",
        "id_number": citizen_id("140105", "19920202", 311),
        "education": "senior",
        "org_id": w.union_a.id,
        "enterprise_id": w.ent_a.id,
        "occupation": "电工",
        "join_date": "2015-01-01",
    }


def _org_create(w: World) -> dict[str, Any]:
    return {
        "code": union_code("140105", True),
        "name": "新工会",
        "level": "grassroots",
        "kind": "enterprise",
        "region_code": "140105",
        "parent_id": w.city_a.id,
    }


def _ent_create(w: World) -> dict[str, Any]:
    from smartunion.validation import make_uscc

    return {
        "uscc": make_uscc("9", "1", "140105", "77665544"),
        "name": "新企业有限公司",
        "industry_division": "06",
        "ownership": "private",
        "size_class": "small",
        "region_code": "140105",
        "employee_count": 20,
        "org_id": w.union_a.id,
    }


ENDPOINTS = [
    Endpoint("POST", "/api/v1/auth/logout", scoped_record=False),
    Endpoint("GET", "/api/v1/auth/me", scoped_record=False),
    Endpoint(
        "POST",
        "/api/v1/auth/password",
        lambda w: {"current_password": "wrong-one", "new_password": "Harbour-Kite-Ninety-3"},
        scoped_record=False,
    ),
    Endpoint("GET", "/api/v1/me/notifications", scoped_record=False),
    Endpoint("GET", "/api/v1/orgs", scoped_record=False),
    Endpoint("GET", "/api/v1/orgs/tree", scoped_record=False),
    Endpoint("GET", "/api/v1/orgs/{org}"),
    Endpoint("POST", "/api/v1/orgs", _org_create),
    Endpoint("PATCH", "/api/v1/orgs/{org}", lambda w: {"name": "改名工会"}),
    Endpoint("GET", "/api/v1/enterprises", scoped_record=False),
    Endpoint("GET", "/api/v1/enterprises/{enterprise}"),
    Endpoint("GET", "/api/v1/enterprises/{enterprise}/departments"),
    Endpoint("POST", "/api/v1/enterprises", _ent_create),
    Endpoint("PATCH", "/api/v1/enterprises/{enterprise}", lambda w: {"employee_count": 5}),
    Endpoint("GET", "/api/v1/members", scoped_record=False),
    Endpoint("GET", "/api/v1/members/{member}"),
    Endpoint("POST", "/api/v1/members", _member_create),
    Endpoint("PATCH", "/api/v1/members/{member}", lambda w: {"occupation": "钳工"}),
    Endpoint("POST", "/api/v1/members/{member}/reveal", lambda w: {"reason": "核实身份信息"}),
    Endpoint("POST", "/api/v1/members/lookup", lambda w: {"id_number": w.id_a}),
    Endpoint("GET", "/api/v1/me/profile", scoped_record=False),
    Endpoint("GET", "/api/v1/security/alerts", scoped_record=False),
    Endpoint("POST", "/api/v1/security/alerts/{alert}/resolve", lambda w: {"note": "已核实，误报"}),
    Endpoint("GET", "/api/v1/exports", scoped_record=False),
    Endpoint("GET", "/api/v1/stats/members", scoped_record=False),
    Endpoint("GET", "/api/v1/me/consents", scoped_record=False),
    Endpoint("PUT", "/api/v1/me/consents/{purpose}", scoped_record=False),
    Endpoint("DELETE", "/api/v1/me/consents/{purpose}", scoped_record=False),
    Endpoint("GET", "/api/v1/me/data", scoped_record=False),
    Endpoint("GET", "/api/v1/me/requests", scoped_record=False),
    Endpoint("POST", "/api/v1/me/requests", lambda w: {"kind": "deletion"}, scoped_record=False),
    Endpoint("GET", "/api/v1/privacy/requests", scoped_record=False),
    Endpoint("POST", "/api/v1/privacy/requests/{request}/resolve", lambda w: {"accept": True}),
    Endpoint("GET", "/api/v1/privacy/register", scoped_record=False),
    Endpoint("GET", "/api/v1/users", scoped_record=False),
    Endpoint(
        "POST",
        "/api/v1/users",
        lambda w: {
            "username": "new_staff",
            "password": "Tiger-Lily-Mine-47",
            "role": "staff",
            "org_id": w.union_a.id,
        },
    ),
    Endpoint("PATCH", "/api/v1/users/{user}", lambda w: {"is_active": False}),
    Endpoint(
        "POST", "/api/v1/users/{user}/password", lambda w: {"new_password": "Harbour-Kite-Ninety-3"}
    ),
    Endpoint("POST", "/api/v1/exports", lambda w: {"org_id": w.union_a.id, "format": "csv"}),
    Endpoint("POST", "/api/v1/exports/{export}/approve", lambda w: {"note": "同意"}),
    Endpoint("POST", "/api/v1/exports/{export}/reject", lambda w: {"note": "不同意"}),
    Endpoint("GET", "/api/v1/exports/{export}/download"),
]
PUBLIC = {("POST", "/api/v1/auth/token")}


def _url(e: Endpoint, w: World) -> str:
    return e.path.format(
        member=w.member_a.id,
        org=w.union_a.id,
        enterprise=w.ent_a.id,
        alert=w.alert_a_id,
        export=w.export_a_id,
        request=w.request_a_id,
        user=w.users["staff_a"].id,
        purpose="services",
    )


def _call(client: TestClient, e: Endpoint, w: World, headers: dict[str, str]) -> Any:
    body = e.body(w) if e.body else None
    return client.request(e.method, _url(e, w), json=body, headers=headers)


def test_every_api_route_is_covered() -> None:
    # The OpenAPI document is the published list of API operations.
    app = create_app(state=object())  # type: ignore[arg-type]  # routes only, no state needed
    routes = {
        (
            method.upper(),
            path.replace("{member_id}", "{member}")
            .replace("{org_id}", "{org}")
            .replace("{enterprise_id}", "{enterprise}")
            .replace("{alert_id}", "{alert}")
            .replace("{export_id}", "{export}")
            .replace("{request_id}", "{request}")
            .replace("{user_id}", "{user}"),
        )
        for path, operations in app.openapi()["paths"].items()
        if path.startswith("/api/")
        for method in operations
    }
    listed = {(e.method, e.path) for e in ENDPOINTS} | PUBLIC
    assert routes == listed, f"uncovered: {routes - listed}; stale: {listed - routes}"


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e.method} {e.path}")
def test_unauthenticated_gets_401(client: TestClient, world: World, endpoint: Endpoint) -> None:
    r = _call(client, endpoint, world, {})
    assert r.status_code == 401
    r = _call(client, endpoint, world, {"Authorization": "Bearer not-a-real-token"})
    assert r.status_code == 401


@pytest.mark.parametrize(
    "endpoint", [e for e in ENDPOINTS if e.scoped_record], ids=lambda e: f"{e.method} {e.path}"
)
def test_sibling_branch_cannot_touch_record(
    client: TestClient, world: World, endpoint: Endpoint
) -> None:
    """An org admin of city B (every permission, other branch) gets 404 for branch A's records;
    so does city B's security officer for branch A's alerts."""
    who = "officer_b" if "/security/" in endpoint.path else "orgadmin_b"
    r = _call(client, endpoint, world, world.auth(who))
    if endpoint.path == "/api/v1/members/lookup":
        # Lookup answers a list; the other branch's member must simply not be in it.
        assert r.status_code == 200
        assert r.json() == []
    elif endpoint.method == "POST" and endpoint.path in {
        "/api/v1/orgs",
        "/api/v1/enterprises",
        "/api/v1/members",
        "/api/v1/exports",
        "/api/v1/users",
    }:
        # Creating under branch A's organisation: the parent is out of scope.
        assert r.status_code == 404, r.text
    else:
        assert r.status_code == 404, r.text


def test_sibling_branch_changes_nothing(client: TestClient, world: World) -> None:
    before = client.get(f"/api/v1/members/{world.member_a.id}", headers=world.auth("staff_a"))
    r = client.patch(
        f"/api/v1/members/{world.member_a.id}",
        json={"occupation": "钳工"},
        headers=world.auth("orgadmin_b"),
    )
    assert r.status_code == 404
    after = client.get(f"/api/v1/members/{world.member_a.id}", headers=world.auth("staff_a"))
    assert before.json()["occupation"] == after.json()["occupation"] == "采煤工"


@pytest.mark.parametrize(
    ("path", "key"),
    [("/api/v1/members", "id"), ("/api/v1/enterprises", "id"), ("/api/v1/orgs", "id")],
)
def test_lists_hold_only_own_branch(client: TestClient, world: World, path: str, key: str) -> None:
    a_ids = {world.member_a.id, world.ent_a.id, world.union_a.id, world.city_a.id}
    r = client.get(path, headers=world.auth("staff_b"), params={"size": 100})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"items", "total", "page", "size"}
    seen = {item[key] for item in body["items"]}
    own = {
        "/api/v1/members": world.member_b.id,
        "/api/v1/enterprises": world.ent_b.id,
        "/api/v1/orgs": world.union_b.id,
    }[path]
    assert own in seen
    if path == "/api/v1/members":
        assert world.member_a.id not in seen
    elif path == "/api/v1/enterprises":
        assert world.ent_a.id not in seen
    else:
        assert not seen & {world.union_a.id, world.city_a.id, world.province.id}
    assert body["total"] == len(seen)
    del a_ids


def test_member_sees_only_self(client: TestClient, world: World) -> None:
    own = client.get("/api/v1/me/profile", headers=world.auth("member_a"))
    assert own.status_code == 200
    assert own.json()["id"] == world.member_a.id
    other = client.get(f"/api/v1/members/{world.member_b.id}", headers=world.auth("member_a"))
    assert other.status_code == 404
    listing = client.get("/api/v1/members", headers=world.auth("member_a"))
    assert listing.status_code == 403


def test_analyst_sees_no_member_record(client: TestClient, world: World) -> None:
    for path in (f"/api/v1/members/{world.member_a.id}", "/api/v1/members"):
        assert client.get(path, headers=world.auth("analyst")).status_code == 403
    r = client.post(
        f"/api/v1/members/{world.member_a.id}/reveal",
        json={"reason": "好奇一下"},
        headers=world.auth("analyst"),
    )
    assert r.status_code == 403


def test_auditor_cannot_read_members(client: TestClient, world: World) -> None:
    r = client.get(f"/api/v1/members/{world.member_a.id}", headers=world.auth("auditor"))
    assert r.status_code == 403


def test_parent_sees_child_branch(client: TestClient, world: World) -> None:
    r = client.get(f"/api/v1/members/{world.member_a.id}", headers=world.auth("admin"))
    assert r.status_code == 200


def test_logged_out_token_is_dead(client: TestClient, world: World) -> None:
    headers = world.auth("staff_a")
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 200
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/auth/me", headers=headers).status_code == 401


def test_cookie_session_is_not_a_bearer_token(client: TestClient, world: World) -> None:
    r = client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {world.cookies['staff_a']}"}
    )
    assert r.status_code == 401


def test_security_officer_sees_only_alerts_in_scope(client: TestClient, world: World) -> None:
    mine = client.get("/api/v1/security/alerts", headers=world.auth("officer"))
    assert [a["id"] for a in mine.json()] == [world.alert_a_id]
    other = client.get("/api/v1/security/alerts", headers=world.auth("officer_b"))
    assert other.json() == []
    assert client.get("/api/v1/security/alerts", headers=world.auth("staff_a")).status_code == 403
