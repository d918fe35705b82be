"""Neither the database file nor any log may contain a plaintext ID number or phone."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartunion import schema
from smartunion.config import Settings
from smartunion.db import Database, make_engine
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import KeyRing
from smartunion.security.models import AuditEvent
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import build_world, citizen_id


def _database_bytes(path: Path) -> bytes:
    return b"".join(
        p.read_bytes() for p in (path, Path(f"{path}-wal"), Path(f"{path}-journal")) if p.exists()
    )


def test_no_plaintext_in_sqlite_file_or_logs(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    db_path = tmp_path / "plain.db"
    url = f"sqlite:///{db_path}"
    schema.upgrade(make_engine(url))
    crypto = FieldCrypto(KeyRing.generate())
    db = Database.from_url(url, audit_key=crypto.ring.audit_key)
    with db.session() as s:
        world = build_world(s, crypto)
        tokens = dict(world.tokens)
    settings = Settings(data_dir=tmp_path, database_url=url)
    app = create_app(settings, state=AppState(settings=settings, db=db, crypto=crypto))
    new_id, new_phone = citizen_id("140105", "19930303", 457), "15912348765"
    bad_id = new_id[:-1] + ("0" if new_id[-1] != "0" else "1")
    headers = {"Authorization": f"Bearer {tokens['staff_a']}"}
    with TestClient(app) as client:
        created = client.post(
            "/api/v1/members",
            headers=headers,
            json={
                "name": "赵六",
                "id_number": new_id,
                "phone": new_phone,
                "education": "college",
                "org_id": world.union_a.id,
                "occupation": "电工",
                "join_date": "2016-03-01",
            },
        )
        assert created.status_code == 201, created.text
        rejected = client.post(
            "/api/v1/members",
            headers=headers,
            json={
                "name": "钱七",
                "id_number": bad_id,
                "education": "college",
                "org_id": world.union_a.id,
                "occupation": "电工",
            },
        )
        assert rejected.status_code == 422
        assert bad_id not in rejected.text  # errors name the field, never echo the value
        found = client.post("/api/v1/members/lookup", headers=headers, json={"phone": new_phone})
        assert [m["id"] for m in found.json()] == [created.json()["id"]]
        revealed = client.post(
            f"/api/v1/members/{created.json()['id']}/reveal",
            headers=headers,
            json={"reason": "办理会员卡核对", "fields": ["id_number", "phone"]},
        )
        assert revealed.json()["fields"] == {"id_number": new_id, "phone": new_phone}
    with db.session() as s:
        details = [e.details for e in s.scalars(select(AuditEvent))]
    db.engine.dispose()

    secrets = [new_id, new_phone, bad_id, world.id_a, world.id_b, world.phone_a, world.phone_b]
    raw = _database_bytes(db_path)
    assert raw, "database file is empty?"
    for value in secrets:
        assert value.encode() not in raw, f"plaintext {value[:3]}… found in the SQLite file"
        assert value not in caplog.text, f"plaintext {value[:3]}… found in the logs"
        assert value not in repr(details)
