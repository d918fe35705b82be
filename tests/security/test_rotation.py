"""Key rotation: everything moves to the new key, lookups never stop working."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from smartunion.cli import app
from smartunion.config import Settings, get_settings
from smartunion.db import Database
from smartunion.members.models import Member
from smartunion.members.service import ID_FIELD, PHONE_FIELD
from smartunion.security import audit, rotation
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import load_keyring, save_keyring
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import World, build_world


@pytest.fixture
def keyed(db: Database, tmp_path: Path) -> tuple[Database, Path, FieldCrypto, World]:
    key_file = tmp_path / "secret.key"
    ring = load_keyring(key_file, create=True)
    crypto = FieldCrypto(ring, path=key_file, reload_seconds=0)
    db.audit_key = ring.audit_key
    db.sessionmaker = db.make_sessionmaker(
        db.sessionmaker.kw["bind"], join_transaction_mode="create_savepoint"
    )
    with db.session() as s:
        world = build_world(s, crypto)
    return db, key_file, crypto, world


def _members(db: Database) -> list[Member]:
    with db.session() as s:
        return list(s.scalars(select(Member).order_by(Member.id)))


def test_rotation_reencrypts_and_reindexes(
    keyed: tuple[Database, Path, FieldCrypto, World],
) -> None:
    db, key_file, crypto, world = keyed
    before = {m.id: (m.id_number_enc, m.id_number_bidx) for m in _members(db)}
    report = rotation.rotate(db, key_file, settle_seconds=0)
    assert report.data_version == 2
    assert report.rewritten[ID_FIELD] == 2
    assert report.rewritten[PHONE_FIELD] == 2
    assert report.rewritten["subject_request.note"] == 1  # every registered field rotates
    assert report.rewritten["user.totp_secret"] == 0
    crypto.reload()
    for m in _members(db):
        assert FieldCrypto.key_version(m.id_number_enc) == 2
        assert m.phone_enc is not None
        assert FieldCrypto.key_version(m.phone_enc) == 2
        assert m.id_number_enc != before[m.id][0]
        assert m.id_number_bidx != before[m.id][1]
    a = next(m for m in _members(db) if m.id == world.member_a.id)
    assert crypto.decrypt(a.id_number_enc, ID_FIELD) == world.id_a
    assert a.id_number_bidx == crypto.blind_index(world.id_a, ID_FIELD)
    with db.session() as s:
        _, broken = audit.verify_chain(s, crypto.ring.audit_key)
        assert broken is None
        actions = [e.action for e in s.scalars(select(audit.AuditEvent))]
    assert actions[-2:] == ["keys.rotate.start", "keys.rotate.done"]


def test_lookup_works_mid_rotation(
    keyed: tuple[Database, Path, FieldCrypto, World], settings: Settings
) -> None:
    """A new key in the file, rows not yet rewritten: the server still finds members."""
    db, key_file, crypto, world = keyed
    save_keyring(load_keyring(key_file).with_new_version("aes-256-gcm"), key_file)
    crypto.reload()
    state = AppState(settings=settings, db=db, crypto=crypto)
    with TestClient(create_app(settings, state=state)) as client:
        r = client.post(
            "/api/v1/members/lookup", json={"id_number": world.id_a}, headers=world.auth("staff_a")
        )
        assert [m["id"] for m in r.json()] == [world.member_a.id]
        rotation.rotate(db, key_file, resume=True, settle_seconds=0)
        crypto.reload()
        r = client.post(
            "/api/v1/members/lookup", json={"phone": world.phone_a}, headers=world.auth("staff_a")
        )
        assert [m["id"] for m in r.json()] == [world.member_a.id]
        detail = client.get(f"/api/v1/members/{world.member_a.id}", headers=world.auth("staff_a"))
        assert detail.json()["id_number"].endswith(world.id_a[-4:])


def test_resume_skips_rows_already_rotated(
    keyed: tuple[Database, Path, FieldCrypto, World],
) -> None:
    db, key_file, _, _ = keyed
    rotation.rotate(db, key_file, settle_seconds=0)
    again = rotation.rotate(db, key_file, resume=True, settle_seconds=0)
    assert again.data_version == 2
    assert sum(again.rewritten.values()) == 0


def test_to_sm4_and_retire_old_keys(keyed: tuple[Database, Path, FieldCrypto, World]) -> None:
    db, key_file, crypto, world = keyed
    report = rotation.rotate(db, key_file, cipher="sm4-gcm", settle_seconds=0, retire_old=True)
    assert report.retired == [1]
    ring = load_keyring(key_file)
    assert set(ring.data_keys) == {2}
    assert ring.current_key.cipher == "sm4-gcm"
    assert ring.blind_key.algorithm == "hmac-sm3"
    crypto.reload()
    a = next(m for m in _members(db) if m.id == world.member_a.id)
    assert crypto.decrypt(a.id_number_enc, ID_FIELD) == world.id_a
    assert a.id_number_bidx == crypto.blind_index(world.id_a, ID_FIELD)
    assert rotation.versions_in_use(db) == {2}


def test_concurrent_edit_is_not_overwritten(
    keyed: tuple[Database, Path, FieldCrypto, World], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The app changes a phone between the rotation's read and its write: the edit wins."""
    db, key_file, crypto, world = keyed
    real_encrypt_many = FieldCrypto.encrypt_many
    edited: list[bool] = []

    def encrypt_and_edit(self: FieldCrypto, plaintexts: list[str], field: str) -> list[bytes]:
        out = real_encrypt_many(self, plaintexts, field)
        if field == PHONE_FIELD and not edited:
            edited.append(True)
            with db.session() as s:
                m = s.get(Member, world.member_a.id)
                assert m is not None
                m.phone_enc = self.encrypt("13900001111", PHONE_FIELD)
                m.phone_bidx = self.blind_index("13900001111", PHONE_FIELD)
        return out

    monkeypatch.setattr(FieldCrypto, "encrypt_many", encrypt_and_edit)
    report = rotation.rotate(db, key_file, settle_seconds=0)
    assert report.skipped_concurrent == 1
    crypto.reload()
    a = next(m for m in _members(db) if m.id == world.member_a.id)
    assert a.phone_enc is not None
    assert crypto.decrypt(a.phone_enc, PHONE_FIELD) == "13900001111"


def test_cli_rotate_and_status(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    monkeypatch.setenv("SMARTUNION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SMARTUNION_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert runner.invoke(app, ["init"]).exit_code == 0
        crypto = FieldCrypto(load_keyring(tmp_path / "secret.key"))
        db = Database.from_url(
            f"sqlite:///{tmp_path / 'smartunion.db'}", audit_key=crypto.ring.audit_key
        )
        with db.session() as s:
            build_world(s, crypto)
        monkeypatch.setattr(rotation.time, "sleep", lambda _s: None)
        result = runner.invoke(app, ["keys", "rotate", "--retire-old"])
        assert result.exit_code == 0, result.output
        assert "data key 2" in result.output
        status = runner.invoke(app, ["keys", "status"])
        assert "data key 2: aes-256-gcm (current)" in status.output
        assert "data key 1" not in status.output
    finally:
        get_settings.cache_clear()
