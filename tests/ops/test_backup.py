"""Backup and restore: encrypted, integrity-checked, all or nothing, across SQLite and PostgreSQL.

Backups need committed data that a second connection can see, so these tests build their
own throwaway databases instead of the rolled-back per-test transaction of ``conftest``.
"""

from __future__ import annotations

import base64
import decimal
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import typer
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from smartunion import schema
from smartunion.cli import app as main_app
from smartunion.config import get_settings
from smartunion.db import Database, make_engine
from smartunion.members.models import ConsentRecord, Member
from smartunion.members.service import ID_FIELD
from smartunion.ops import backup as bk
from smartunion.ops.cli import register
from smartunion.orgs.models import OrgLevel, UnionOrg
from smartunion.security import audit
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import KeyRing, load_keyring
from smartunion.security.models import AuditEvent
from tests.conftest import PG_PROBLEM, create_pg_database, drop_pg_database
from tests.factories import World, build_world, citizen_id, make_member, make_org

SMALL_BATCH = 7  # several batches per table even for a small world
SMALL_CHUNK = 4096  # several chunks per file

FreshEngine = Callable[[str], AbstractContextManager[Engine]]


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing.generate()


@pytest.fixture
def fresh(tmp_path: Path) -> FreshEngine:
    """A new, migrated, empty database on the backend asked for; dropped afterwards."""

    @contextmanager
    def make(backend: str) -> Iterator[Engine]:
        if backend == "postgresql":
            if PG_PROBLEM is not None:
                pytest.skip(PG_PROBLEM)
            url = create_pg_database("su_backup")
        else:
            number = len(list(tmp_path.glob("db_*")))
            url = f"sqlite:///{tmp_path / f'db_{number}.db'}"
        engine = make_engine(url)
        try:
            schema.upgrade(engine)
            yield engine
        finally:
            engine.dispose()
            if backend == "postgresql":
                drop_pg_database(url)

    return make


def fill(engine: Engine, ring: KeyRing) -> World:
    """The test world, 30 more members (some without phone), consents and audit events."""
    crypto = FieldCrypto(ring)
    db = Database(engine, audit_key=ring.audit_key)
    with db.session() as s:
        world = build_world(s, crypto)
        for i in range(30):
            phone = f"1350000{i:04d}" if i % 3 else None
            m = make_member(
                s, crypto, world.union_b, world.ent_b, f"王{i}", citizen_id(seq=300 + i), phone
            )
            s.add(ConsentRecord(member_id=m.id, purpose="membership", version="2026-1"))
        for i in range(12):
            audit.record(
                s, None, "member.list", username="staff_a", details={"count": i, "备注": "测试"}
            )
    # Half chained, half waiting for the sealer: a backup carries both kinds.
    with db.session() as s:
        audit.seal_pending(s, ring.audit_key, limit=6)
    return world


def counts(engine: Engine) -> dict[str, int]:
    return {name: t.rows for name, t in bk.database_digests(engine).items()}


def ciphertexts(engine: Engine) -> list[tuple[int, bytes, bytes | None]]:
    with Session(engine) as s:
        rows = s.execute(
            select(Member.id, Member.id_number_enc, Member.phone_enc).order_by(Member.id)
        ).all()
    return [(r[0], r[1], r[2]) for r in rows]


def events(engine: Engine) -> list[tuple[Any, ...]]:
    with Session(engine) as s:
        return [
            (e.id, e.action, e.details, e.prev_hash, e.hash, e.occurred_at)
            for e in s.scalars(select(AuditEvent).order_by(AuditEvent.id))
        ]


def backup_of(engine: Engine, ring: KeyRing, path: Path, **kw: Any) -> bk.BackupManifest:
    kw = {"batch_rows": SMALL_BATCH, "chunk_size": SMALL_CHUNK, **kw}
    return bk.create_backup(engine, ring, path, **kw)


CROSS = [
    ("sqlite", "sqlite"),
    ("postgresql", "postgresql"),
    ("sqlite", "postgresql"),
    ("postgresql", "sqlite"),
]


class TestRoundTrip:
    @pytest.mark.parametrize(("source", "target"), CROSS, ids=[f"{a}->{b}" for a, b in CROSS])
    def test_restored_database_equals_the_source(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path, source: str, target: str
    ) -> None:
        with fresh(source) as src, fresh(target) as dst:
            world = fill(src, ring)
            before = bk.database_digests(src)
            src_events, src_cipher = events(src), ciphertexts(src)
            made = backup_of(src, ring, tmp_path / "one.subak")
            assert made.tables == before  # the manifest holds the database's own checksums
            assert made.dialect == source
            assert made.counts["member"] == 32
            assert made.audit_events == 12
            assert made.audit_break is None

            restored = bk.restore_backup(dst, ring, tmp_path / "one.subak")

            assert restored.digest == made.digest
            after = bk.database_digests(dst)
            for name, summary in before.items():
                if name != "audit_event":
                    assert after[name] == summary, name
            assert ciphertexts(dst) == src_cipher  # byte for byte
            crypto = FieldCrypto(ring)
            a = next(enc for mid, enc, _ in ciphertexts(dst) if mid == world.member_a.id)
            assert crypto.decrypt(a, ID_FIELD) == world.id_a
            # The trail is the source's, plus one sealed event for the restore itself.
            restored_events = events(dst)
            assert restored_events[:-1] == src_events
            with Session(dst) as s:
                checked, broken = audit.verify_chain(s, ring.audit_key)
            assert (checked, broken) == (len(src_events) + 1, None)
            last = restored_events[-1]
            assert last[1] == "backup.restore"
            assert last[2]["manifest_sha256"] == made.digest
            assert last[2]["tables"]["member"] == 32

    @pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
    def test_new_rows_get_fresh_ids_after_restore(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path, backend: str
    ) -> None:
        with fresh("sqlite") as src, fresh(backend) as dst:
            world = fill(src, ring)
            backup_of(src, ring, tmp_path / "b.subak")
            bk.restore_backup(dst, ring, tmp_path / "b.subak")
            with Database(dst, audit_key=ring.audit_key).session() as s:
                parent = s.get(UnionOrg, world.city_a.id)
                assert parent is not None
                org = make_org(s, "新建区总工会", OrgLevel.COUNTY, "140105", parent)
                biggest = s.scalar(select(UnionOrg.id).order_by(UnionOrg.id.desc()).offset(1))
                assert org.id == (biggest or 0) + 1  # PostgreSQL sequences were reset

    def test_backup_appends_an_audit_event_without_row_content(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        with fresh("sqlite") as src:
            world = fill(src, ring)
            made = backup_of(src, ring, tmp_path / "b.subak")
            last = events(src)[-1]
            assert last[1] == "backup.create"
            assert last[2]["file"] == "b.subak"
            assert last[2]["manifest_sha256"] == made.digest
            assert last[2]["tables"] == made.counts
            assert world.id_a not in str(last[2])
            assert stat.S_IMODE(os.stat(tmp_path / "b.subak").st_mode) == 0o600
            assert not list(tmp_path.glob(".*partial"))

    def test_a_chain_broken_before_the_backup_is_reported_not_hidden(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        with fresh("sqlite") as src, fresh("sqlite") as dst:
            fill(src, ring)
            with src.begin() as conn:  # someone with database access edits event 5
                conn.execute(
                    AuditEvent.__table__.update()
                    .where(AuditEvent.id == 5)
                    .values(actor_username="nobody")
                )
            made = backup_of(src, ring, tmp_path / "b.subak")
            assert made.audit_break == "event 5: content does not match its seal"
            restored = bk.restore_backup(dst, ring, tmp_path / "b.subak")
            assert restored.audit_break == made.audit_break

    def test_a_changed_unsealed_event_is_reported_too(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        with fresh("sqlite") as src:
            fill(src, ring)
            with src.begin() as conn:
                last = conn.scalar(select(func.max(AuditEvent.id)))
                conn.execute(
                    AuditEvent.__table__.update()
                    .where(AuditEvent.id == last)
                    .values(actor_username="nobody")
                )
            made = backup_of(src, ring, tmp_path / "b.subak")
            assert made.audit_break == f"event {last}: unsealed event (row id) fails its own seal"

    def test_existing_file_is_never_overwritten(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        out = tmp_path / "b.subak"
        out.write_bytes(b"precious")
        with fresh("sqlite") as src, pytest.raises(bk.BackupError, match="exists already"):
            backup_of(src, ring, out)
        assert out.read_bytes() == b"precious"

    def test_a_dead_backups_partial_file_is_replaced(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        """kill -9 during a backup leaves its partial file; the next backup must not refuse."""
        (tmp_path / ".b2.subak.partial").write_bytes(b"left by a killed backup")
        with fresh("sqlite") as src:
            fill(src, ring)
            made = backup_of(src, ring, tmp_path / "b2.subak")
        assert made.counts["member"] == 32
        assert not (tmp_path / ".b2.subak.partial").exists()

    def test_a_running_backups_partial_file_is_left_alone(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        partial = tmp_path / ".b3.subak.partial"
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "import fcntl, os, sys, time\n"
                f"fd = os.open({str(partial)!r}, os.O_WRONLY | os.O_CREAT, 0o600)\n"
                "fcntl.flock(fd, fcntl.LOCK_EX)\n"
                "print('locked', flush=True)\n"
                "time.sleep(60)\n",
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "locked"
            with fresh("sqlite") as src, pytest.raises(bk.BackupError, match="is running"):
                backup_of(src, ring, tmp_path / "b3.subak")
            assert partial.exists()
        finally:
            holder.kill()
            holder.wait()

    def test_verify_backup_reads_the_manifest_without_a_database(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        with fresh("sqlite") as src:
            fill(src, ring)
            made = backup_of(src, ring, tmp_path / "b.subak")
        checked = bk.verify_backup(ring, tmp_path / "b.subak")
        assert (checked.digest, checked.tables) == (made.digest, made.tables)

    def test_decimals_are_compared_by_value_across_backends(self) -> None:
        values = [decimal.Decimal("1.10"), decimal.Decimal("10"), decimal.Decimal("0.0"), None]
        assert bk._decimal_text(values) == ["1.1", "10", "0", None]

    def test_every_column_of_the_schema_has_a_backup_type(self) -> None:
        # A model added with a type the format does not know fails here, not in production.
        plans = bk._plans()
        assert {p.name for p in plans} >= {"member", "union_org", "audit_event"}
        assert "union_org" in bk._deferred_columns(plans)  # parent_id and the enterprise cycle


class TestIntegrity:
    @pytest.fixture
    def made(self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path) -> bytes:
        with fresh("sqlite") as src:
            fill(src, ring)
            backup_of(src, ring, tmp_path / "good.subak")
        return (tmp_path / "good.subak").read_bytes()

    def test_any_altered_byte_is_refused_and_nothing_is_loaded(
        self, made: bytes, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        block = SMALL_CHUNK + 16
        chunk_starts = range(64, len(made), block)
        assert len(chunk_starts) >= 3
        positions = set(range(64))  # every header byte
        for start in chunk_starts:
            end = min(start + block, len(made)) - 1
            positions |= {start, (start + end) // 2, end - 16, end}  # data and tag bytes
        bad = tmp_path / "bad.subak"
        with fresh("sqlite") as dst:
            for pos in sorted(positions):
                data = bytearray(made)
                data[pos] ^= 0x01
                bad.write_bytes(bytes(data))
                with pytest.raises(bk.BackupError):
                    bk.restore_backup(dst, ring, bad)
            assert not any(counts(dst).values())  # every attempt rolled back

    def test_damaged_chunk_is_named(
        self, made: bytes, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        data = bytearray(made)
        data[64 + 2 * (SMALL_CHUNK + 16) + 100] ^= 0xFF
        (tmp_path / "bad.subak").write_bytes(bytes(data))
        with fresh("sqlite") as dst, pytest.raises(bk.DamagedBackup, match="chunk 2 ") as err:
            bk.restore_backup(dst, ring, tmp_path / "bad.subak")
        assert err.value.chunk == 2

    def test_late_damage_with_force_leaves_the_old_contents(
        self, made: bytes, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        (tmp_path / "good.subak").write_bytes(made)
        data = bytearray(made)
        data[-1] ^= 0x01  # the last tag: noticed only after every table was loaded
        (tmp_path / "bad.subak").write_bytes(bytes(data))
        with fresh("sqlite") as dst:
            bk.restore_backup(dst, ring, tmp_path / "good.subak")
            before = bk.database_digests(dst)
            with pytest.raises(bk.DamagedBackup):
                bk.restore_backup(dst, ring, tmp_path / "bad.subak", force=True)
            assert bk.database_digests(dst) == before

    @pytest.mark.parametrize("cut", ["boundary", "mid-chunk", "header", "empty"])
    def test_truncated_file_is_refused(
        self, made: bytes, fresh: FreshEngine, ring: KeyRing, tmp_path: Path, cut: str
    ) -> None:
        keep = {
            "boundary": 64 + 2 * (SMALL_CHUNK + 16),
            "mid-chunk": len(made) - 40,
            "header": 30,
            "empty": 0,
        }[cut]
        (tmp_path / "cut.subak").write_bytes(made[:keep])
        expected: type[bk.BackupError] = bk.NotABackup if cut == "empty" else bk.DamagedBackup
        with fresh("sqlite") as dst, pytest.raises(expected) as err:
            bk.restore_backup(dst, ring, tmp_path / "cut.subak")
        if cut in ("boundary", "header"):
            assert "truncated" in str(err.value)

    def test_appended_and_reordered_chunks_are_refused(
        self, made: bytes, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        block = SMALL_CHUNK + 16
        first, second = made[64 : 64 + block], made[64 + block : 64 + 2 * block]
        swapped = made[:64] + second + first + made[64 + 2 * block :]
        cases = {"appended": made + b"\x00" * 20, "swapped": swapped}
        with fresh("sqlite") as dst:
            for name, data in cases.items():
                (tmp_path / f"{name}.subak").write_bytes(data)
                with pytest.raises(bk.DamagedBackup):
                    bk.restore_backup(dst, ring, tmp_path / f"{name}.subak")

    def test_other_files_are_not_backups(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        (tmp_path / "notes.txt").write_text("hello, this is not a backup\n" * 10)
        with fresh("sqlite") as dst, pytest.raises(bk.NotABackup, match="not a SmartUnion"):
            bk.restore_backup(dst, ring, tmp_path / "notes.txt")

    def test_newer_format_is_refused_by_name(
        self, made: bytes, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        data = bytearray(made)
        data[9] = 2  # format version 2
        (tmp_path / "v2.subak").write_bytes(bytes(data))
        with fresh("sqlite") as dst, pytest.raises(bk.UnsupportedFormat, match="format 2"):
            bk.restore_backup(dst, ring, tmp_path / "v2.subak")


class TestKeys:
    def test_wrong_key_file_is_named_as_such(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        other = KeyRing.generate()
        with fresh("sqlite") as src, fresh("sqlite") as dst:
            fill(src, ring)
            backup_of(src, ring, tmp_path / "b.subak")
            with pytest.raises(bk.WrongKey, match="another key file") as err:
                bk.restore_backup(dst, other, tmp_path / "b.subak")
            assert bk.key_id(ring).hex()[:16] in str(err.value)
            assert bk.key_id(other).hex()[:16] in str(err.value)
            assert not any(counts(dst).values())

    def test_file_holds_no_plaintext_and_no_key_material(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        with fresh("sqlite") as src:
            world = fill(src, ring)
            backup_of(src, ring, tmp_path / "b.subak")
        data = (tmp_path / "b.subak").read_bytes()
        plaintexts = [world.id_a, world.id_b, world.phone_a, world.phone_b, "13500000001"]
        plaintexts += ["张三丰", "太原煤业有限公司", "member_no", "union_org"]
        for plain in plaintexts:
            assert plain.encode() not in data, plain
        secrets = [ring.signing_key, ring.audit_key, bk._backup_key(ring)]
        secrets += [k.key for k in ring.data_keys.values()]
        secrets += [k.key for k in ring.blind_keys.values()]
        for secret in secrets:
            for form in (secret, secret.hex().encode(), base64.b64encode(secret)):
                assert form not in data

    def test_key_rotation_keeps_backups_readable_but_retired_keys_are_needed(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        rotated = ring.with_new_version("aes-256-gcm")
        retired = rotated.without_versions({1}, {1})
        with fresh("sqlite") as src, fresh("sqlite") as dst:
            fill(src, ring)
            backup_of(src, ring, tmp_path / "b.subak")
            with pytest.raises(bk.MissingDataKeys, match=r"version\(s\) \[1\]"):
                bk.restore_backup(dst, retired, tmp_path / "b.subak")
            restored = bk.restore_backup(dst, rotated, tmp_path / "b.subak")
            assert restored.data_key_versions == (1,)


class TestTarget:
    def test_non_empty_target_is_refused_unless_forced(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        with fresh("sqlite") as src, fresh("sqlite") as dst:
            fill(src, ring)
            made = backup_of(src, ring, tmp_path / "b.subak")
            fill(dst, KeyRing.generate())  # other data, other key: replaced wholesale
            before = bk.database_digests(dst)
            with pytest.raises(bk.TargetNotEmpty, match=r"member \(32\).*--force"):
                bk.restore_backup(dst, ring, tmp_path / "b.subak")
            assert bk.database_digests(dst) == before
            restored = bk.restore_backup(dst, ring, tmp_path / "b.subak", force=True)
            assert restored.digest == made.digest
            after = bk.database_digests(dst)
            assert {n: s for n, s in after.items() if n != "audit_event"} == {
                n: s for n, s in made.tables.items() if n != "audit_event"
            }
            assert events(dst)[-1][2]["replaced_rows"] == sum(s.rows for s in before.values())

    def test_target_at_another_schema_revision_is_refused(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path
    ) -> None:
        with fresh("sqlite") as src:
            fill(src, ring)
            backup_of(src, ring, tmp_path / "b.subak")
        older = make_engine(f"sqlite:///{tmp_path / 'older.db'}")
        script = ScriptDirectory.from_config(schema.alembic_config("sqlite://"))
        head = script.get_revision(script.get_current_head())
        assert head is not None
        schema.upgrade(older, str(head.down_revision))
        with pytest.raises(bk.SchemaMismatch, match="smartunion init"):
            bk.restore_backup(older, ring, tmp_path / "b.subak")
        bare = make_engine(f"sqlite:///{tmp_path / 'bare.db'}")
        with pytest.raises(bk.SchemaMismatch, match="no schema"):
            bk.restore_backup(bare, ring, tmp_path / "b.subak")
        older.dispose()
        bare.dispose()

    def test_backup_from_another_schema_revision_is_refused(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with fresh("sqlite") as src, fresh("sqlite") as dst:
            fill(src, ring)
            with monkeypatch.context() as patched:  # a backup made by a later SmartUnion
                patched.setattr(bk, "_db_revision", lambda conn: "0099")
                patched.setattr(bk, "_code_revision", lambda: "0099")
                backup_of(src, ring, tmp_path / "future.subak")
            with pytest.raises(bk.SchemaMismatch, match="from schema revision 0099"):
                bk.restore_backup(dst, ring, tmp_path / "future.subak")
            assert not any(counts(dst).values())

    def test_busy_postgresql_target_is_not_waited_for_forever(
        self, fresh: FreshEngine, ring: KeyRing, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(bk, "LOCK_TIMEOUT_MS", 300)
        with fresh("sqlite") as src, fresh("postgresql") as dst:
            fill(src, ring)
            backup_of(src, ring, tmp_path / "b.subak")
            with dst.connect() as other, other.begin():  # a server in the middle of a write
                other.execute(text("LOCK TABLE member IN ROW EXCLUSIVE MODE"))
                with pytest.raises(bk.BackupError, match="in use"):
                    bk.restore_backup(dst, ring, tmp_path / "b.subak")


runner = CliRunner()


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., tuple[int, str]]]:
    """Invoke ``smartunion …`` with the data directory given; backup/restore registered."""
    ops_app = typer.Typer()
    register(ops_app)

    def invoke(data_dir: Path, *args: str) -> tuple[int, str]:
        monkeypatch.setenv("SMARTUNION_DATA_DIR", str(data_dir))
        get_settings.cache_clear()
        command = ops_app if args[0] in ("backup", "restore") else main_app
        result = runner.invoke(command, list(args))
        return result.exit_code, " ".join(result.output.split())  # rich wraps long lines

    monkeypatch.delenv("SMARTUNION_DATABASE_URL", raising=False)
    monkeypatch.delenv("SMARTUNION_SECRET_KEY_FILE", raising=False)
    get_settings.cache_clear()
    yield invoke
    get_settings.cache_clear()


class TestCli:
    def test_backup_and_restore_round_trip(
        self, cli: Callable[..., tuple[int, str]], tmp_path: Path
    ) -> None:
        a, b, c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
        assert cli(a, "init")[0] == 0
        ring = load_keyring(a / "secret.key", create=False)
        engine = make_engine(f"sqlite:///{a / 'smartunion.db'}")
        fill(engine, ring)
        engine.dispose()
        out = tmp_path / "nightly.subak"

        code, said = cli(a, "backup", "--out", str(out))
        assert code == 0, said
        assert "backup written" in said
        assert "(not in the backup)" in said

        b.mkdir()
        shutil.copy2(a / "secret.key", b / "secret.key")  # the operator's separate copy
        assert cli(b, "init")[0] == 0
        code, said = cli(b, "restore", str(out))
        assert code == 0, said
        assert "verified: every chunk tag, counts and checksums" in said

        code, said = cli(b, "restore", str(out))
        assert code == 1
        assert "not empty" in said
        assert "--force" in said
        assert "Traceback" not in said
        assert cli(b, "restore", str(out), "--force")[0] == 0

        assert cli(c, "init")[0] == 0  # a new key file: not the one of the backup
        code, said = cli(c, "restore", str(out))
        assert code == 1
        assert "another key file" in said
        assert str(c / "secret.key") in said.replace(" ", "")

    def test_without_key_file_nothing_is_created(
        self, cli: Callable[..., tuple[int, str]], tmp_path: Path
    ) -> None:
        (tmp_path / "backup.subak").write_bytes(b"SUBACKUP")
        code, said = cli(tmp_path / "d", "restore", str(tmp_path / "backup.subak"))
        assert code == 1
        assert "does not exist" in said
        assert not (tmp_path / "d" / "secret.key").exists()
