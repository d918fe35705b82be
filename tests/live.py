"""A real server for concurrency tests: uvicorn in a thread, a real database file or
PostgreSQL database, real connections (no shared test transaction)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

import smartunion.models  # noqa: F401  (every model, as the composition roots load them)
from smartunion import schema
from smartunion.config import Settings
from smartunion.db import make_engine
from smartunion.security import guard
from smartunion.security.keys import KeyRing, save_keyring
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.conftest import PG_PROBLEM, create_pg_database, drop_pg_database
from tests.factories import World, build_world


@dataclass
class Live:
    url: str
    settings: Settings
    state: AppState
    world: World


@contextmanager
def database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    if backend == "postgresql":
        if PG_PROBLEM is not None:
            pytest.skip(PG_PROBLEM)
        url = create_pg_database("su_live")
        try:
            yield url
        finally:
            drop_pg_database(url)
    else:
        yield f"sqlite:///{tmp_path / 'live.db'}"


def prepare(backend_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    """Schema and key file for a server; the settings it runs with."""
    engine = make_engine(backend_url)
    schema.upgrade(engine)
    engine.dispose()
    save_keyring(KeyRing.generate(), tmp_path / "secret.key")
    values: dict[str, Any] = {
        "data_dir": tmp_path,
        "database_url": backend_url,
        "api_rate_limit": 0,
        "audit_seal_interval": 0,
        **overrides,
    }
    return Settings(**values)


@contextmanager
def live_server(backend: str, tmp_path: Path, **overrides: Any) -> Iterator[Live]:
    guard.clear_baselines()
    with database_url(backend, tmp_path) as url:
        settings = prepare(url, tmp_path, **overrides)
        state = AppState.from_settings(settings)
        with state.db.session() as s:
            world = build_world(s, state.crypto)
        app = create_app(settings, state=state)
        server = uvicorn.Server(
            uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        )
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = server.servers[0].sockets[0].getsockname()[1]
        try:
            yield Live(f"http://127.0.0.1:{port}", settings, state, world)
        finally:
            server.should_exit = True
            thread.join(timeout=20)
            state.db.engine.dispose()
