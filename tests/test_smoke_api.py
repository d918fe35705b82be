import pytest
from fastapi.testclient import TestClient

from tests.factories import World


def test_healthz(client: TestClient) -> None:
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "path", ["/static/swagger/swagger-ui-bundle.js", "/static/swagger/swagger-ui.css"]
)
def test_docs_assets_are_served(client: TestClient, path: str) -> None:
    # /docs loads these; the "/static" mount once shadowed them (a blank docs page).
    assert client.get("/docs").status_code == 200
    assert client.get(path).status_code == 200


def test_member_detail_masked(client: TestClient, world: World) -> None:
    r = client.get(f"/api/v1/members/{world.member_a.id}", headers=world.auth("staff_a"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["id_number"] == world.id_a[:6] + "********" + world.id_a[-4:]
    assert body["name"] == "张*丰"


def test_sibling_gets_404(client: TestClient, world: World) -> None:
    r = client.get(f"/api/v1/members/{world.member_a.id}", headers=world.auth("staff_b"))
    assert r.status_code == 404
