"""API requests as one unit of work in one worker thread (``web.unit.OneThreadRoute``)."""

from __future__ import annotations

import functools
import inspect
import threading
from collections.abc import Callable
from typing import Annotated, Any

import anyio.to_thread
import pytest
from fastapi import Depends, FastAPI
from fastapi.testclient import TestClient

from smartunion.security.principal import Principal
from smartunion.web.deps import ApiPrincipal, DbSession
from smartunion.web.unit import one_thread
from tests.factories import World


@pytest.fixture
def hops(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every hand-over to a worker thread, by the name of the function sent there."""
    seen: list[str] = []
    real = anyio.to_thread.run_sync

    async def counting(func: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        inner = func
        while isinstance(inner, functools.partial):
            inner = inner.func
        seen.append(getattr(inner, "__name__", repr(inner)))
        return await real(func, *args, **kw)

    monkeypatch.setattr(anyio.to_thread, "run_sync", counting)
    return seen


@pytest.mark.parametrize(
    ("who", "path"),
    [("member_a", "/api/v1/me/profile"), ("staff_a", "/api/v1/members?size=5")],
)
def test_an_api_request_is_one_hop_to_a_worker_thread(
    client: TestClient, world: World, hops: list[str], who: str, path: str
) -> None:
    headers = world.auth(who)
    hops.clear()
    r = client.get(path, headers=headers)
    assert r.status_code == 200, r.text
    # Caller, handler, answer and commit: one hop (it was four: one each).
    assert hops == ["unit"]


def test_a_write_is_one_hop_and_committed_before_the_answer(
    client: TestClient, world: World, hops: list[str]
) -> None:
    headers = world.auth("staff_a")
    hops.clear()
    r = client.patch(
        f"/api/v1/members/{world.member_a.id}", json={"occupation": "焊工"}, headers=headers
    )
    assert r.status_code == 200, r.text
    assert hops == ["unit"]
    assert (
        client.get(f"/api/v1/members/{world.member_a.id}", headers=headers).json()["occupation"]
        == "焊工"
    )


def test_no_token_is_401_without_a_worker_thread(client: TestClient, hops: list[str]) -> None:
    r = client.get("/api/v1/me/profile")
    assert r.status_code == 401
    assert r.headers["www-authenticate"] == "Bearer"
    assert hops == []


def test_a_bad_token_is_401(client: TestClient) -> None:
    r = client.get("/api/v1/me/profile", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401


def test_the_caller_and_the_handler_share_the_thread_and_the_session(
    settings: Any, app_state: Any, world: World
) -> None:
    seen: dict[str, Any] = {}

    def probe(principal: ApiPrincipal, session: DbSession) -> dict[str, int]:
        seen["thread"] = threading.get_ident()
        seen["session"] = session
        return {"user": principal.user_id}

    app = FastAPI()
    app.state.smartunion = app_state
    app.add_api_route("/probe", one_thread(probe))
    with TestClient(app) as client:
        r = client.get("/probe", headers=world.auth("staff_a"))
    assert r.status_code == 200
    assert r.json() == {"user": world.users["staff_a"].id}
    assert seen["thread"] != threading.get_ident()
    assert not seen["session"].in_transaction()  # ended (committed) before the answer


def _needs_session(session: DbSession) -> int:
    return 1


def _uses_a_session_dependency(
    x: Annotated[int, Depends(_needs_session)], principal: ApiPrincipal
) -> int:
    return x


async def _already_async(principal: ApiPrincipal) -> int:
    return 1


def _no_database(q: int = 0) -> int:
    return q


def test_an_endpoint_whose_dependency_needs_the_session_is_left_as_it_is() -> None:
    # Its dependency would otherwise get a second session beside the unit's.
    endpoint, already_async, no_database = (
        _uses_a_session_dependency,
        _already_async,
        _no_database,
    )
    assert one_thread(endpoint) is endpoint
    assert one_thread(already_async) is already_async
    assert one_thread(no_database) is no_database


def test_the_rewritten_endpoint_keeps_name_docs_and_parameters() -> None:
    def listing(principal: ApiPrincipal, session: DbSession, page: int = 1) -> list[Principal]:
        """List things."""
        return []

    wrapped = one_thread(listing)
    assert wrapped is not listing
    assert wrapped.__name__ == "listing"
    assert wrapped.__doc__ == "List things."
    params = inspect.signature(wrapped).parameters
    assert "page" in params
    assert params["page"].default == 1
    assert "principal" not in params
    assert "session" not in params
    assert inspect.signature(wrapped).return_annotation == list[Principal]
