"""The SQLite engine under concurrent requests."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, text
from sqlalchemy.orm import Session

from smartunion import db as dbmod
from smartunion.db import Database, defer_write, make_engine

T = Table("t", MetaData(), Column("x", Integer))


def test_overlapping_read_then_write_transactions_wait_instead_of_failing(
    tmp_path: Path,
) -> None:
    """Requests read, then write their audit event. A deferred SQLite transaction that read
    is refused the write at once ("database is locked") when another request committed in
    between; the 1M-member API benchmark hit it. A transaction now drops its read snapshot
    and takes the writer lock just before its first write."""
    engine = make_engine(f"sqlite:///{tmp_path / 'race.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    errors: list[str] = []

    def work() -> None:
        for _ in range(100):
            try:
                with engine.begin() as conn:
                    conn.execute(text("SELECT count(*) FROM t")).scalar()
                    conn.execute(text("INSERT INTO t VALUES (1)"))
            except Exception as exc:  # any failure is the bug
                errors.append(type(exc).__name__)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM t")).scalar() == 400
    engine.dispose()


def test_name_search_uses_the_name_index(sqlite_engine: object) -> None:
    """A name search must be an index range, not a scan: on 1M members the scan took ~1 s.
    (The pattern used to be sent as `:p || '%'`, which SQLite cannot use an index for.)"""
    from sqlalchemy import Engine
    from sqlalchemy import text as sql_text
    from sqlalchemy.dialects import sqlite

    from smartunion.members import repository
    from smartunion.security.permissions import Role
    from smartunion.security.principal import Principal

    assert isinstance(sqlite_engine, Engine)
    principal = Principal.for_user(
        user_id=1, username="x", role=Role.STAFF, org_id=1, org_path="/1/"
    )
    where = repository.MemberFilter(q="张伟")
    stmt = where.apply(repository.readable_members(principal, lead_with_scope=False))
    compiled = stmt.compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    with sqlite_engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA case_sensitive_like=ON")
        plan = " ".join(
            str(row[3]) for row in conn.execute(sql_text(f"EXPLAIN QUERY PLAN {compiled}"))
        )
    assert "ix_member_name" in plan, plan


def _probe_can_write(path: Path) -> bool:
    probe = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        probe.execute("BEGIN IMMEDIATE")
        probe.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        probe.close()


def test_readers_hold_no_lock_and_deferred_writes_wait_for_commit(tmp_path: Path) -> None:
    """While a request reads (and renders), another process may write; its bookkeeping
    writes take the lock only when it commits."""
    path = tmp_path / "lock.db"
    database = Database(make_engine(f"sqlite:///{path}"))
    with database.engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (x INTEGER)"))
    table = T
    with database.session() as s:
        s.execute(text("SELECT count(*) FROM t")).scalar()
        defer_write(s, insert(table), {"x": 1})
        assert _probe_can_write(path)  # reading, with a write pending: no lock held
    with database.session() as s:
        assert s.execute(text("SELECT count(*) FROM t")).scalar() == 1


class TestGroupCommit:
    def test_concurrent_read_requests_commit_together_and_all_land(self, tmp_path: Path) -> None:
        database = Database(make_engine(f"sqlite:///{tmp_path / 'group.db'}", pool_size=20))
        with database.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        table = T

        failed: dict[int, BaseException] = {}

        def request(i: int) -> None:
            try:
                with database.session() as s:
                    s.execute(text("SELECT count(*) FROM t")).scalar()
                    time.sleep(0.001)
                    defer_write(s, insert(table), {"x": i})
            except Exception as exc:  # the request's error answer
                failed[i] = exc

        threads = [threading.Thread(target=request, args=(i,)) for i in range(200)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        with database.engine.connect() as conn:
            got = sorted(r[0] for r in conn.execute(text("SELECT x FROM t")))
        # Every request that ended without an error has its write; a request may fail only
        # by waiting too long for one of the 20 connections, on a machine loaded enough.
        assert got == sorted(set(range(200)) - set(failed))
        assert all("QueuePool limit" in str(e) for e in failed.values()), failed
        assert len(failed) < 20, failed

    def test_a_failing_write_fails_its_request_only(self, tmp_path: Path) -> None:
        database = Database(make_engine(f"sqlite:///{tmp_path / 'group.db'}"))
        with database.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER UNIQUE)"))
        table = T
        good = dbmod._Entry([(insert(table), {"x": 1})])
        bad = dbmod._Entry([(insert(table), {"x": 2}), (insert(table), {"x": 2})])
        also_good = dbmod._Entry([(insert(table), {"x": 3})])
        with Session(database.engine) as s:
            dbmod._GroupCommit._write(s, [good, bad, also_good])
        assert good.error is None
        assert also_good.error is None
        assert bad.error is not None
        with database.engine.connect() as conn:
            assert sorted(r[0] for r in conn.execute(text("SELECT x FROM t"))) == [1, 3]


def test_objects_read_stay_readable_after_their_session_group_commits(tmp_path: Path) -> None:
    """A command reads rows, records its audit event, and prints the rows after the session
    ended: the group commit must not expire them (it used to roll the session back)."""
    from smartunion import schema
    from smartunion.orgs.models import OrgLevel, UnionOrg
    from smartunion.security import audit
    from tests.factories import make_org

    engine = make_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    schema.upgrade(engine)
    database = Database(engine, audit_key=b"k" * 32)
    with database.session() as s:
        org_id = make_org(s, "山西省总工会", OrgLevel.PROVINCE, "140000", None).id
    with database.session() as s:
        org = s.get(UnionOrg, org_id)
        assert org is not None
        audit.record(s, None, "org.read", object_id=org_id)
    assert org.name == "山西省总工会"
    with database.session() as s:
        assert s.scalar(text("SELECT count(*) FROM audit_event WHERE action = 'org.read'")) == 1
    engine.dispose()


class TestCheckpoints:
    """Checkpoints are the checkpointer's work, not a request's commit's."""

    def _database(self, tmp_path: Path) -> Database:
        database = Database(make_engine(f"sqlite:///{tmp_path / 'wal.db'}"))
        with database.engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (x INTEGER)"))
        return database

    def test_a_commit_does_not_checkpoint_at_sqlites_default(self, tmp_path: Path) -> None:
        database = self._database(tmp_path)
        with database.engine.connect() as conn:
            pages = conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar()
        assert pages == dbmod.WAL_AUTOCHECKPOINT_PAGES
        assert pages is not None
        assert pages > 1000  # SQLite's default: a checkpoint with an fsync in a commit

    def test_the_checkpointer_copies_and_restarts_the_wal(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        database = self._database(tmp_path)
        wal = tmp_path / "wal.db-wal"
        for i in range(50):
            with database.session() as s:
                s.execute(insert(T), [{"x": i * 1000 + j} for j in range(200)])
        small = database.checkpoint()
        assert small is not None
        assert small[0] > 0
        assert small[1] == small[0]  # copied into the database file...
        assert wal.stat().st_size > 0  # ...and a small WAL is left to be reused
        monkeypatch.setattr(dbmod, "_RESTART_FRAMES", 1)
        with database.session() as s:
            s.execute(insert(T), [{"x": -1}])
        database.checkpoint()
        assert wal.stat().st_size == 0  # past the threshold: restarted, no reader held it
        with database.session() as s:
            assert s.execute(text("SELECT count(*) FROM t")).scalar() == 50 * 200 + 1

    def test_a_reader_is_not_kept_waiting_by_the_checkpointer(self, tmp_path: Path) -> None:
        database = self._database(tmp_path)
        with database.session() as s:
            s.execute(insert(T), [{"x": i} for i in range(5000)])
        with database.session() as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 5000
            started = time.perf_counter()
            database.checkpoint()  # the reader's snapshot is open: it must not wait for it
            assert time.perf_counter() - started < 1.0
            assert reader.execute(text("SELECT count(*) FROM t")).scalar() == 5000

    def test_the_server_runs_one_and_stops_it(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(dbmod, "_RESTART_FRAMES", 1)
        database = self._database(tmp_path)
        with database.session() as s:
            s.execute(insert(T), [{"x": 1}])
        checkpointer = dbmod.WalCheckpointer(database, interval=0.05)
        checkpointer.start()
        try:
            deadline = time.monotonic() + 5
            while (tmp_path / "wal.db-wal").stat().st_size and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            checkpointer.stop()
        assert (tmp_path / "wal.db-wal").stat().st_size == 0

    def test_a_group_commit_ends_the_requests_read_snapshot_before_it_writes(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An open snapshot during the write keeps SQLite from restarting the WAL: under
        load that was every write, and every commit then ran a checkpoint with an fsync."""
        database = self._database(tmp_path)
        open_during_write: list[bool] = []
        write = dbmod._GroupCommit._write

        def watching(session: Session, batch: list[dbmod._Entry]) -> None:
            open_during_write.append(request.in_transaction())
            write(session, batch)

        monkeypatch.setattr(dbmod._GroupCommit, "_write", staticmethod(watching))
        with database.session() as request:
            request.execute(text("SELECT count(*) FROM t")).scalar()
            defer_write(request, insert(T), {"x": 1})
        assert open_during_write == [False]
        with database.session() as s:
            assert s.execute(text("SELECT count(*) FROM t")).scalar() == 1
