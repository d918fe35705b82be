"""Exports: masked, watermarked, formula-safe; big or unmasked ones need a second person."""

from __future__ import annotations

import csv
import io
import os
import stat
from pathlib import Path

import openpyxl
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from smartunion.cli import app
from smartunion.config import Settings, get_settings
from smartunion.db import Database
from smartunion.security.crypto import FieldCrypto
from smartunion.security.guard import GuardPolicy
from smartunion.security.keys import load_keyring
from smartunion.security.models import AuditEvent
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import World, build_world, bulk_members, citizen_id, make_member


def _create(client: TestClient, world: World, who: str = "staff_a", **body: object) -> dict:
    payload = {"org_id": world.union_a.id, "format": "csv", **body}
    r = client.post("/api/v1/exports", json=payload, headers=world.auth(who))
    assert r.status_code == 201, r.text
    return r.json()


def _csv_rows(content: bytes, encoding: str = "utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(content.decode(encoding))))


class TestSmallExport:
    def test_masked_watermarked_and_neutralised(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        with db.session() as s:
            evil = make_member(
                s, crypto, world.union_a, world.ent_a, "王二", citizen_id("140105", "19880808", 17)
            )
            evil.occupation = '=HYPERLINK("http://x")'
        request = _create(client, world)
        assert request["status"] == "approved"
        r = client.get(f"/api/v1/exports/{request['id']}/download", headers=world.auth("staff_a"))
        assert r.status_code == 200
        rows = _csv_rows(r.content)
        assert request["uid"] in rows[0][0]
        assert "staff_a" in rows[0][0]
        assert rows[1][:3] == ["会员编号", "姓名", "性别"]
        text = r.content.decode("utf-8-sig")
        assert world.id_a not in text
        assert world.phone_a not in text
        assert world.id_a[:6] + "********" + world.id_a[-4:] in text
        assert "'=HYPERLINK" in text
        assert not any(cell.startswith("=") for row in rows for cell in row)
        with db.session() as s:
            event = s.scalar(select(AuditEvent).where(AuditEvent.action == "export.download"))
            assert event is not None
            assert event.details["sha256"] == r.headers["X-Export-SHA256"]
            assert event.details["records"] == len(rows) - 2

    def test_download_only_once(self, client: TestClient, world: World) -> None:
        request = _create(client, world)
        url = f"/api/v1/exports/{request['id']}/download"
        assert client.get(url, headers=world.auth("staff_a")).status_code == 200
        assert client.get(url, headers=world.auth("staff_a")).status_code == 409

    def test_someone_else_cannot_download(self, client: TestClient, world: World) -> None:
        request = _create(client, world)
        url = f"/api/v1/exports/{request['id']}/download"
        assert client.get(url, headers=world.auth("orgadmin_a")).status_code == 404

    def test_xlsx_and_gb18030(self, client: TestClient, world: World) -> None:
        request = _create(client, world, format="xlsx")
        r = client.get(f"/api/v1/exports/{request['id']}/download", headers=world.auth("staff_a"))
        book = openpyxl.load_workbook(io.BytesIO(r.content))
        sheet = book.active
        assert request["uid"] in str(sheet["A1"].value)
        assert request["uid"] in (book.properties.description or "")
        assert sheet["B2"].value == "姓名"
        second = _create(client, world)
        r = client.get(
            f"/api/v1/exports/{second['id']}/download",
            params={"encoding": "gb18030"},
            headers=world.auth("staff_a"),
        )
        assert _csv_rows(r.content, "gb18030")[1][1] == "姓名"


@pytest.fixture
def strict_client(settings: Settings, db: Database, crypto: FieldCrypto) -> TestClient:
    settings.export_approval_threshold = 0
    return TestClient(create_app(settings, state=AppState(settings=settings, db=db, crypto=crypto)))


class TestApproval:
    def test_large_export_needs_a_second_person(
        self, strict_client: TestClient, world: World
    ) -> None:
        client = strict_client
        request = _create(client, world, org_id=world.city_a.id)
        assert request["status"] == "pending"
        assert request["record_count"] == 1
        url = f"/api/v1/exports/{request['id']}"
        assert client.get(f"{url}/download", headers=world.auth("staff_a")).status_code == 409
        # Not by the requester, not by another branch, yes by an approver in scope.
        assert (
            client.post(f"{url}/approve", json={}, headers=world.auth("staff_a")).status_code == 403
        )
        assert (
            client.post(f"{url}/approve", json={}, headers=world.auth("orgadmin_b")).status_code
            == 404
        )
        approved = client.post(
            f"{url}/approve", json={"note": "年度核对"}, headers=world.auth("admin")
        )
        assert approved.json()["status"] == "approved"
        assert client.get(f"{url}/download", headers=world.auth("staff_a")).status_code == 200

    def test_unmasked_needs_reason_and_approval(self, client: TestClient, world: World) -> None:
        r = client.post(
            "/api/v1/exports",
            json={"org_id": world.union_a.id, "unmasked": True},
            headers=world.auth("staff_a"),
        )
        assert r.status_code == 422
        request = _create(client, world, unmasked=True, reason="向银行报送会员卡开卡名单")
        assert request["status"] == "pending"
        url = f"/api/v1/exports/{request['id']}"
        client.post(f"{url}/approve", json={}, headers=world.auth("orgadmin_a"))
        r = client.get(f"{url}/download", headers=world.auth("staff_a"))
        assert world.id_a in r.content.decode("utf-8-sig")

    def test_rejected_export_never_downloads(self, strict_client: TestClient, world: World) -> None:
        request = _create(strict_client, world, org_id=world.city_a.id)
        url = f"/api/v1/exports/{request['id']}"
        strict_client.post(f"{url}/reject", json={"note": "无必要"}, headers=world.auth("admin"))
        assert (
            strict_client.get(f"{url}/download", headers=world.auth("staff_a")).status_code == 409
        )

    def test_daily_export_quota(
        self, settings: Settings, db: Database, crypto: FieldCrypto, world: World
    ) -> None:
        with db.session() as s:
            bulk_members(s, crypto, world.union_a, world.ent_a, 40, "工人")
        db.guard_policy = GuardPolicy(daily_export_quota=30)
        db.sessionmaker = db.make_sessionmaker(
            db.sessionmaker.kw["bind"], join_transaction_mode="create_savepoint"
        )
        client = TestClient(
            create_app(settings, state=AppState(settings=settings, db=db, crypto=crypto))
        )
        request = _create(client, world)
        r = client.get(f"/api/v1/exports/{request['id']}/download", headers=world.auth("staff_a"))
        assert r.status_code == 429


class TestCli:
    @pytest.fixture
    def data_dir(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
        monkeypatch.setenv("SMARTUNION_DATA_DIR", str(tmp_path))
        monkeypatch.delenv("SMARTUNION_DATABASE_URL", raising=False)
        get_settings.cache_clear()
        runner = CliRunner()
        assert runner.invoke(app, ["init"]).exit_code == 0
        crypto = FieldCrypto(load_keyring(tmp_path / "secret.key"))
        db = Database.from_url(
            f"sqlite:///{tmp_path / 'smartunion.db'}", audit_key=crypto.ring.audit_key
        )
        with db.session() as s:
            world = build_world(s, crypto)
            self.code = world.union_a.code
            self.id_a = world.id_a
        db.engine.dispose()
        yield tmp_path
        get_settings.cache_clear()

    def test_export_members_csv(self, data_dir: Path) -> None:
        out = data_dir / "members.csv"
        result = CliRunner().invoke(
            app,
            [
                "export",
                "members",
                "--org",
                self.code,
                "--format",
                "csv",
                "--out",
                str(out),
                "--user",
                "staff_a",
            ],
        )
        assert result.exit_code == 0, result.output
        assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
        text = out.read_bytes().decode("utf-8-sig")
        assert "staff_a" in text.splitlines()[0]
        assert self.id_a not in text

    def test_over_threshold_waits_for_approval(
        self, data_dir: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("SMARTUNION_EXPORT_APPROVAL_THRESHOLD", "0")
        get_settings.cache_clear()
        out = data_dir / "members.xlsx"
        result = CliRunner().invoke(
            app, ["export", "members", "--org", self.code, "--out", str(out), "--user", "staff_a"]
        )
        assert result.exit_code == 3
        assert "awaits approval" in result.output
        assert not out.exists()


@pytest.mark.parametrize(
    "filters", [{"": None}, {"salary": 1}, {"employment_form": "bogus"}, {"status": "gone"}]
)
def test_a_bad_filter_is_a_clear_422_not_a_server_error(
    client: TestClient, world: World, filters: dict[str, object]
) -> None:
    payload = {
        "dataset": "members",
        "org_id": world.union_a.id,
        "format": "csv",
        "filters": filters,
        "reason": "核对名单",
    }
    r = client.post("/api/v1/exports", json=payload, headers=world.auth("staff_a"))
    assert r.status_code == 422, r.text
    assert r.json()["detail"][0]["loc"] == ["body", "filters"]
