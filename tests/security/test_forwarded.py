"""Item 16: X-Forwarded-For is believed only from configured proxies, so the per-address
log-in limit cannot be dodged by naming another address."""

from __future__ import annotations

import os
import socket
import subprocess  # nosec B404 (the server as a deployment runs it)
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartunion.config import Settings
from smartunion.db import Database
from smartunion.security.crypto import FieldCrypto
from smartunion.security.models import AuditEvent
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import World

CLI = Path(sys.executable).with_name("smartunion")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """``smartunion serve`` as a deployment starts it, on the host's loopback."""
    env = {
        **os.environ,
        "SMARTUNION_DATA_DIR": str(tmp_path),
        "SMARTUNION_LOGIN_RATE_LIMIT": "3",
        "SMARTUNION_AUDIT_SEAL_INTERVAL": "0",
    }
    env.pop("SMARTUNION_DATABASE_URL", None)
    env.pop("SMARTUNION_TRUSTED_PROXIES", None)
    done = subprocess.run(  # nosec B603
        [str(CLI), "init"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    port = _free_port()
    server = subprocess.Popen(  # nosec B603
        [str(CLI), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, "the server stopped"
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=20)


def test_served_app_ignores_forwarded_for_from_the_host(served: str) -> None:
    codes = [
        httpx.post(
            f"{served}/api/v1/auth/token",
            data={"username": "ghost", "password": "x"},
            headers={"X-Forwarded-For": f"10.0.0.{i}"},
            timeout=30,
        ).status_code
        for i in range(4)
    ]
    assert codes == [401, 401, 401, 429]


def test_default_app_counts_the_connection_address(
    settings: Settings, db: Database, crypto: FieldCrypto, world: World
) -> None:
    settings.login_rate_limit = 3
    app = create_app(settings, state=AppState(settings=settings, db=db, crypto=crypto))
    with TestClient(app) as client:
        codes = [
            client.post(
                "/api/v1/auth/token",
                data={"username": "ghost", "password": "x"},
                headers={"X-Forwarded-For": f"10.0.0.{i}"},
            ).status_code
            for i in range(4)
        ]
    assert codes == [401, 401, 401, 429]


def test_a_configured_proxy_is_believed(
    settings: Settings, db: Database, crypto: FieldCrypto, world: World
) -> None:
    # The test client connects as "testclient"; here it plays the trusted proxy.
    settings.login_rate_limit = 3
    settings.trusted_proxies = "testclient, 192.0.2.0/24"
    app = create_app(settings, state=AppState(settings=settings, db=db, crypto=crypto))
    with TestClient(app) as client:
        codes = [
            client.post(
                "/api/v1/auth/token",
                data={"username": "ghost", "password": "x"},
                headers={"X-Forwarded-For": f"10.0.0.{i}"},
            ).status_code
            for i in range(4)
        ]
    assert codes == [401, 401, 401, 401]  # four clients behind the proxy, one try each
    with db.session() as s:
        ips = s.scalars(
            select(AuditEvent.client_ip)
            .where(AuditEvent.action == "auth.login")
            .order_by(AuditEvent.id)
        ).all()
    assert ips[-4:] == ["10.0.0.0", "10.0.0.1", "10.0.0.2", "10.0.0.3"]
