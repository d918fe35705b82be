"""Concurrency and durability: many requests at once against a real server and database.

Each test here failed before the change it guards: requests serialised behind the audit
lock, a 2xx sent before the commit, unique races answered 500, password checks inside
the write lock.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from smartunion.config import Settings
from smartunion.db import Database
from smartunion.members.models import Member
from smartunion.members.service import REVEALS_PER_HOUR
from smartunion.security import audit, passwords
from smartunion.security import service as identity
from smartunion.security.models import AccessCounter, AuditEvent, User
from smartunion.security.rotation import rotate
from smartunion.web.admission import Admission, Gate
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import PASSWORD, build_world, bulk_members, citizen_id
from tests.live import Live, database_url, live_server, prepare

BACKENDS = ["sqlite", "postgresql"]


def _audited(live: Live, action: str) -> int:
    with live.state.db.session() as s:
        return int(s.scalar(select(func.count()).where(AuditEvent.action == action)) or 0)


def _verify(live: Live) -> audit.Verification:
    key = live.state.crypto.ring.audit_key
    audit.seal_all(live.state.db.session, key)
    with live.state.db.session() as s:
        return audit.verify(s, key)


class _FailingCommit(Session):
    """A commit that fails after the handler returned, as on a full disk."""

    def commit(self) -> None:
        raise OperationalError("COMMIT", {}, Exception("database or disk is full"))


class TestDurability:
    def test_a_failed_commit_is_not_acknowledged(
        self, settings: Settings, db: Database, world: Any, crypto: Any
    ) -> None:
        bind = db.sessionmaker.kw["bind"]
        failing = Database(bind.engine, audit_key=crypto.ring.audit_key)
        failing.sessionmaker = failing.make_sessionmaker(
            bind, join_transaction_mode="create_savepoint", class_=_FailingCommit
        )
        app = create_app(settings, state=AppState(settings=settings, db=failing, crypto=crypto))
        with TestClient(app, raise_server_exceptions=False) as client:
            r = client.patch(
                f"/api/v1/members/{world.member_a.id}",
                json={"occupation": "never-committed"},
                headers=world.auth("staff_a"),
            )
        assert r.status_code == 500
        with db.session() as s:
            assert s.get(Member, world.member_a.id).occupation != "never-committed"  # type: ignore[union-attr]

    @pytest.mark.slow
    @pytest.mark.parametrize("backend", BACKENDS)
    def test_kill_9_under_writes_loses_no_acknowledged_write(
        self, backend: str, tmp_path: Path
    ) -> None:
        """Writes acknowledged with 200 are all in the database after the server is killed."""
        with database_url(backend, tmp_path) as url:
            settings = prepare(url, tmp_path)
            state = AppState.from_settings(settings)
            with state.db.session() as s:
                world = build_world(s, state.crypto)
                bulk_members(s, state.crypto, world.union_a, world.ent_a, 300, "K")
                ids = list(
                    s.scalars(
                        select(Member.id)
                        .where(Member.org_id == world.union_a.id)
                        .order_by(Member.id)
                    )
                )
            state.db.engine.dispose()
            port = _free_port()
            env = {
                **os.environ,
                "SMARTUNION_DATA_DIR": str(tmp_path),
                "SMARTUNION_DATABASE_URL": url,
                "SMARTUNION_API_RATE_LIMIT": "0",
                "SMARTUNION_GUARD_MIN_NORMAL_DAILY": "100000",
                "SMARTUNION_GUARD_HARD_MARGIN": "100000000",
            }
            server = subprocess.Popen(
                [str(Path(sys.executable).with_name("smartunion")), "serve", "--port", str(port)],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                base = f"http://127.0.0.1:{port}"
                _wait_for(base)
                acknowledged = _write_until_killed(base, world.auth("staff_a"), ids, server)
            finally:
                if server.poll() is None:
                    os.killpg(server.pid, signal.SIGKILL)
                server.wait()
            assert len(acknowledged) >= 20, "too few writes were acknowledged to test"
            check = Database.from_url(url)
            with check.session() as s:
                stored = dict(
                    s.execute(
                        select(Member.id, Member.occupation).where(Member.id.in_(acknowledged))
                    ).all()
                )
            check.engine.dispose()
            lost = {mid for mid, value in acknowledged.items() if stored.get(mid) != value}
            assert not lost, f"{len(lost)} acknowledged writes lost"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for(base: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("server did not become ready")


def _write_until_killed(
    base: str, headers: dict[str, str], ids: list[int], server: subprocess.Popen[bytes]
) -> dict[int, str]:
    acknowledged: dict[int, str] = {}

    def write(mid: int) -> tuple[int, str] | None:
        value = f"已提交{mid}"
        try:
            r = httpx.patch(
                f"{base}/api/v1/members/{mid}",
                json={"occupation": value},
                headers=headers,
                timeout=10,
            )
        except httpx.HTTPError:
            return None  # killed mid-request: not acknowledged
        return (mid, value) if r.status_code == 200 else None

    with cf.ThreadPoolExecutor(12) as pool:
        futures = [pool.submit(write, mid) for mid in ids]
        for done in cf.as_completed(futures):
            result = done.result()
            if result is not None:
                acknowledged[result[0]] = result[1]
            if len(acknowledged) == 60 and server.poll() is None:
                os.killpg(server.pid, signal.SIGKILL)  # while ~12 writes are in flight
    return acknowledged


@pytest.mark.parametrize("backend", BACKENDS)
class TestConcurrentRequests:
    def test_fifty_concurrent_audited_reads(self, backend: str, tmp_path: Path) -> None:
        with live_server(backend, tmp_path) as live:
            w = live.world
            urls = [f"{live.url}/api/v1/members/{w.member_a.id}"] * 25
            urls += [f"{live.url}/api/v1/me/profile"] * 25
            heads = [w.auth("staff_a")] * 25 + [w.auth("member_a")] * 25
            before = _audited(live, "member.read")
            with cf.ThreadPoolExecutor(50) as pool:
                codes = list(
                    pool.map(
                        lambda u, h: httpx.get(u, headers=h, timeout=30).status_code, urls, heads
                    )
                )
            assert codes == [200] * 50
            assert _audited(live, "member.read") - before == 50
            result = _verify(live)
            assert result.broken is None
            assert result.unsealed == 0

    def test_same_id_number_at_once_is_one_201_and_409s(self, backend: str, tmp_path: Path) -> None:
        with live_server(backend, tmp_path) as live:
            w = live.world
            body = {
                "name": "王同时",
                "id_number": citizen_id("140105", "19910101", 777),
                "education": "college",
                "org_id": w.union_a.id,
                "occupation": "钳工",
            }

            def create(_: int) -> int:
                r = httpx.post(
                    f"{live.url}/api/v1/members", json=body, headers=w.auth("staff_a"), timeout=30
                )
                return r.status_code

            with cf.ThreadPoolExecutor(16) as pool:
                codes = sorted(pool.map(create, range(16)))
            assert codes.count(201) == 1
            assert set(codes) == {201, 409}, codes

    def test_key_rotation_beside_busy_clients(self, backend: str, tmp_path: Path) -> None:
        with live_server(
            backend, tmp_path, guard_min_normal_daily=100_000, guard_hard_margin=10**8
        ) as live:
            w = live.world
            with live.state.db.session() as s:
                bulk_members(s, live.state.crypto, w.union_a, w.ent_a, 2000, "R")
            stop = time.monotonic() + 60
            errors: list[int] = []
            served = 0

            def client(i: int) -> int:
                n = 0
                while time.monotonic() < stop and not rotated.is_set():
                    if i % 5 == 0:
                        r = httpx.patch(
                            f"{live.url}/api/v1/members/{w.member_a.id}",
                            json={"phone": f"1391234{i:04d}"},
                            headers=w.auth("staff_a"),
                            timeout=30,
                        )
                    elif i % 2:
                        r = httpx.get(f"{live.url}/api/v1/me/profile", headers=w.auth("member_a"))
                    else:
                        r = httpx.get(
                            f"{live.url}/api/v1/members/{w.member_a.id}", headers=w.auth("staff_a")
                        )
                    if r.status_code != 200:
                        errors.append(r.status_code)
                    n += 1
                return n

            rotated = threading.Event()
            with cf.ThreadPoolExecutor(21) as pool:
                workers = [pool.submit(client, i) for i in range(20)]
                time.sleep(0.5)
                # The default settle time: servers re-read the key file every 2 s.
                report = rotate(live.state.db, live.settings.key_file, batch=100)
                time.sleep(0.5)
                rotated.set()
                served = sum(f.result() for f in workers)
            assert errors == []
            assert served >= 40  # every client kept being answered while the keys changed
            assert sum(report.rewritten.values()) >= 2000


class TestPasswordWorkHoldsNoLock:
    """Argon2 takes ~100 ms: other writers must not wait for it (SQLite: the write lock)."""

    def test_login_and_user_creation(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        url = f"sqlite:///{tmp_path / 'live.db'}"
        settings = prepare(url, tmp_path)
        state = AppState.from_settings(settings)
        with state.db.session() as s:
            world = build_world(s, state.crypto)
        blocked: list[str] = []

        def other_writer_can_write(what: str) -> None:
            probe = sqlite3.connect(tmp_path / "live.db", timeout=0, isolation_level=None)
            try:
                probe.execute("BEGIN IMMEDIATE")
                probe.execute("ROLLBACK")
            except sqlite3.OperationalError:
                blocked.append(what)
            finally:
                probe.close()

        real_verify, real_hash = passwords.verify_password, passwords.hash_password

        def verify(h: str, p: str) -> bool:
            other_writer_can_write("verify")
            return real_verify(h, p)

        def hash_(p: str, *, username: str | None = None) -> str:
            other_writer_can_write("hash")
            return real_hash(p, username=username)

        monkeypatch.setattr(identity, "verify_password", verify)
        monkeypatch.setattr(identity, "hash_password", hash_)
        for attempt in ("wrong-password-1", PASSWORD):
            expect = (
                nullcontext()
                if attempt == PASSWORD
                else pytest.raises(identity.AuthenticationFailed)
            )
            with state.db.session() as s, expect:
                identity.authenticate(s, "staff_a", attempt)
        with state.db.session() as s:
            identity.create_user(
                s,
                None,
                username="new_staff",
                password="Strong-Passw0rd-2026",
                role=world.users["staff_a"].role,
                org=world.city_a,
            )
        state.db.engine.dispose()
        assert blocked == []

    def test_parallel_wrong_passwords_each_count(self, tmp_path: Path) -> None:
        url = f"sqlite:///{tmp_path / 'live.db'}"
        state = AppState.from_settings(prepare(url, tmp_path))
        with state.db.session() as s:
            build_world(s, state.crypto)

        def guess(i: int) -> None:
            with pytest.raises(identity.AuthenticationFailed), state.db.session() as s:
                identity.authenticate(s, "staff_b", f"wrong-guess-{i}")

        with cf.ThreadPoolExecutor(4) as pool:
            list(pool.map(guess, range(4)))
        with state.db.session() as s:
            user = s.scalar(select(User).where(User.username == "staff_b"))
            assert user is not None
            assert user.failed_logins == 4
        state.db.engine.dispose()


class TestAdmission:
    """Saturated: 503 with Retry-After at once; probes and static files never wait."""

    def test_over_capacity_gets_503_and_healthz_still_answers(self) -> None:
        release = anyio.Event()

        async def slow_app(scope: Any, receive: Any, send: Any) -> None:
            if scope["path"] != "/healthz":
                await release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"ok"})

        gate = Gate(limit=2, queue=2, wait=0.3)
        app = Admission(slow_app, gate=gate)

        async def scenario() -> tuple[list[httpx.Response], httpx.Response, float]:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                results: list[httpx.Response] = []

                async def call() -> None:
                    results.append(await client.get("/api/v1/me/profile"))

                async with anyio.create_task_group() as tg:
                    for _ in range(6):
                        tg.start_soon(call)
                    await anyio.sleep(0.05)
                    started = time.perf_counter()
                    health = await client.get("/healthz")
                    health_s = time.perf_counter() - started
                    await anyio.sleep(0.4)
                    release.set()
                return results, health, health_s

        results, health, health_s = anyio.run(scenario)
        codes = sorted(r.status_code for r in results)
        assert codes == [200, 200, 503, 503, 503, 503]
        busy = [r for r in results if r.status_code == 503]
        assert all(r.headers["retry-after"] == "1" for r in busy)
        assert health.status_code == 200
        assert health_s < 0.2
        assert gate.refused == 4


def test_readyz_checks_the_database(client: TestClient) -> None:
    r = client.get("/readyz")
    assert r.status_code == 200
    assert r.json()["database"] == "ok"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_burst_past_capacity_gets_503s_then_the_server_answers_at_once(
    backend: str, tmp_path: Path
) -> None:
    """Above capacity: quick 503s with Retry-After, nothing else; right after, normal."""
    with live_server(
        backend, tmp_path, worker_threads=2, queue_size=4, queue_wait_seconds=0.2
    ) as live:
        w = live.world
        url = f"{live.url}/api/v1/me/profile"

        def call(_: int) -> httpx.Response:
            return httpx.get(url, headers=w.auth("member_a"), timeout=30)

        with cf.ThreadPoolExecutor(60) as pool:
            answers = list(pool.map(call, range(120)))
        codes = {r.status_code for r in answers}
        assert codes <= {200, 503}, codes
        busy = [r for r in answers if r.status_code == 503]
        assert busy, "the burst never exceeded capacity"
        assert all(r.headers.get("retry-after") == "1" for r in busy)
        started = time.perf_counter()
        assert httpx.get(f"{live.url}/healthz", timeout=5).status_code == 200
        assert call(0).status_code == 200
        assert time.perf_counter() - started < 5  # a wedged server took 30 s and more


@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_reveals_stop_at_the_hourly_limit(backend: str, tmp_path: Path) -> None:
    """Without the global audit lock, parallel reveals all read the same count: the limit
    must still hold."""
    with live_server(backend, tmp_path) as live:
        w = live.world
        url = f"{live.url}/api/v1/members/{w.member_a.id}/reveal"
        body = {"reason": "核对困难帮扶申请", "fields": ["phone"]}

        def reveal(_: int) -> int:
            return httpx.post(url, json=body, headers=w.auth("staff_a"), timeout=30).status_code

        with cf.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(reveal, range(40)))
        assert codes.count(200) == REVEALS_PER_HOUR
        assert codes.count(429) == 40 - REVEALS_PER_HOUR


@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_reads_cannot_pass_the_guard_together(backend: str, tmp_path: Path) -> None:
    """Sixteen parallel scrapers of one account: each charge commits in its own short
    transaction before the records leave, so together they get no more than one would."""
    normal, margin = 300, 500
    with live_server(
        backend,
        tmp_path,
        guard_min_normal_daily=normal,
        guard_alert_margin=100,
        guard_hard_margin=margin,
    ) as live:
        w = live.world
        with live.state.db.session() as s:
            bulk_members(s, live.state.crypto, w.union_a, w.ent_a, 200, "C")
        url = f"{live.url}/api/v1/members"

        def read(_: int) -> tuple[int, int]:
            r = httpx.get(url, params={"size": 100}, headers=w.auth("staff_a"), timeout=30)
            return r.status_code, len(r.json()["items"]) if r.status_code == 200 else 0

        with cf.ThreadPoolExecutor(16) as pool:
            results = list(pool.map(read, range(48)))
        served = sum(n for _, n in results)
        assert normal <= served <= normal + margin
        assert {code for code, _ in results} <= {200, 401, 403}
        with live.state.db.session() as s:
            user = s.get(User, w.users["staff_a"].id)
            assert user is not None
            assert user.suspended_at is not None
            charged = s.scalar(
                select(func.sum(AccessCounter.records)).where(AccessCounter.user_id == user.id)
            )
        # Every served row was charged; only the refusals that suspended add to it.
        assert served <= int(charged or 0) <= served + 16 * 100
