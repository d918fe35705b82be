"""Console and portal page behaviour added for a real day's work (issue 9, items 10–14).

Runs on SQLite and PostgreSQL like tests/web/test_pages.py; logged-in cases reuse the
ready cookie sessions of ``world``.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.factories import World


def login_as(client: TestClient, world: World, who: str) -> None:
    client.cookies.set("su_session", world.cookies[who])


class TestUnknownAddresses:
    """Item 10: a styled Chinese 404 page under /console and /m/; the API keeps JSON."""

    @pytest.mark.parametrize("path", ["/console/nope", "/console/members/1/nope", "/console/a/b/c"])
    def test_console_answers_a_styled_page(
        self, client: TestClient, world: World, path: str
    ) -> None:
        login_as(client, world, "staff_a")
        r = client.get(path)
        assert r.status_code == 404
        assert "text/html" in r.headers["content-type"]
        assert "页面不存在" in r.text
        assert 'class="sidenav' in r.text  # in the console's own look, navigation included
        assert r.headers["cache-control"] == "no-store"

    def test_console_page_without_a_session_still_says_so(self, client: TestClient) -> None:
        r = client.get("/console/nope")
        assert r.status_code == 404
        assert "页面不存在" in r.text
        assert 'class="sidenav' not in r.text  # nobody is logged in: no navigation

    def test_post_to_an_unknown_console_address(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.post("/console/nope", data={"x": "1"})
        assert r.status_code == 404
        assert "页面不存在" in r.text

    def test_portal_answers_a_styled_page(self, client: TestClient, world: World) -> None:
        login_as(client, world, "member_a")
        r = client.get("/m/nope")
        assert r.status_code == 404
        assert "页面不存在" in r.text
        assert 'href="/m/"' in r.text  # the way back is the portal, not the console

    def test_english_when_chosen(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        client.cookies.set("lang", "en")
        r = client.get("/console/nope")
        assert r.status_code == 404
        assert "Page not found" in r.text

    def test_known_pages_are_untouched(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        assert client.get("/console/members").status_code == 200
        r = client.get("/console/", follow_redirects=False)
        assert r.status_code in (307, 308)
        assert r.headers["location"].endswith("/console")
        # A record that does not exist keeps its own message.
        r = client.get("/console/members/999999")
        assert r.status_code == 404
        assert "记录不存在" in r.text

    @pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/members/1/nope"])
    def test_the_api_keeps_json(self, client: TestClient, world: World, path: str) -> None:
        r = client.get(path, headers=world.auth("staff_a"))
        assert r.status_code == 404
        assert r.json() == {"detail": "Not Found"}
