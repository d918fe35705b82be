"""Exports: masked, watermarked, formula-safe; big or unmasked ones need a second person."""

from __future__ import annotations

import csv
import hashlib
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
from smartunion.errors import NotFound
from smartunion.orgs.models import OrgKind, OrgLevel, UnionOrg
from smartunion.security.crypto import FieldCrypto
from smartunion.security.guard import GuardPolicy
from smartunion.security.independence import NotIndependent, require_independent
from smartunion.security.keys import load_keyring
from smartunion.security.models import AuditEvent, User
from smartunion.security.permissions import Permission, Role
from smartunion.security.principal import Principal
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import (
    PASSWORD,
    World,
    build_world,
    bulk_members,
    citizen_id,
    make_member,
    make_org,
    make_user,
)


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
        # The header is the first row; the watermark stays out of the data (issue 9 #13).
        assert rows[0][:3] == ["会员编号", "姓名", "性别"]
        assert request["uid"] not in r.content.decode("utf-8-sig")
        assert request["uid"] in r.headers["content-disposition"]
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
            assert event.details["records"] == len(rows) - 1

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
        # Row 1 is the header (filters and pivot tables work); the watermark is in the
        # document properties, the printed page header and the note sheet.
        assert [c.value for c in sheet[1]][:3] == ["会员编号", "姓名", "性别"]
        assert sheet.auto_filter.ref is not None
        assert sheet.auto_filter.ref.startswith("A1:")
        assert all(request["uid"] not in str(c.value) for row in sheet.iter_rows() for c in row)
        assert request["uid"] in (book.properties.description or "")
        assert request["uid"] in (book.properties.title or "")
        assert request["uid"] in sheet.oddHeader.left.text
        note = book["说明"]
        assert request["uid"] in str(note["A1"].value)
        assert "staff_a" in str(note["A1"].value)
        assert book.sheetnames[0] == sheet.title
        second = _create(client, world)
        r = client.get(
            f"/api/v1/exports/{second['id']}/download",
            params={"encoding": "gb18030"},
            headers=world.auth("staff_a"),
        )
        assert _csv_rows(r.content, "gb18030")[0][1] == "姓名"


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
        assert text.splitlines()[0].startswith("会员编号,姓名,")  # the header is row 1
        assert "staff_a" not in text
        assert self.id_a not in text
        assert hashlib.sha256(out.read_bytes()).hexdigest()[:16] in result.output

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


class TestIndependence:
    """An org admin made a staff account, requested an unmasked export through it and
    approved it as themselves: the second person must be independent of the first."""

    def _login(self, client: TestClient, username: str) -> dict[str, str]:
        r = client.post("/api/v1/auth/token", data={"username": username, "password": PASSWORD})
        assert r.status_code == 200, r.text
        return {"Authorization": f"Bearer {r.json()['access_token']}"}

    def _unmasked_request(self, client: TestClient, world: World, headers: dict[str, str]) -> str:
        r = client.post(
            "/api/v1/exports",
            json={"org_id": world.union_a.id, "unmasked": True, "reason": "向银行报送开卡名单"},
            headers=headers,
        )
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "pending"
        return f"/api/v1/exports/{r.json()['id']}"

    def test_who_made_the_account_cannot_approve_its_export(
        self, client: TestClient, world: World
    ) -> None:
        made = client.post(
            "/api/v1/users",
            json={
                "username": "puppet",
                "password": PASSWORD,
                "role": "staff",
                "org_id": world.union_a.id,
            },
            headers=world.auth("orgadmin_a"),
        )
        assert made.status_code == 201, made.text
        url = self._unmasked_request(client, world, self._login(client, "puppet"))
        r = client.post(f"{url}/approve", json={}, headers=world.auth("orgadmin_a"))
        assert r.status_code == 403
        assert "independent" in r.json()["detail"]
        # Somebody independent with the whole organisation in scope may.
        r = client.post(f"{url}/approve", json={}, headers=world.auth("admin"))
        assert r.status_code == 200
        assert r.json()["status"] == "approved"

    def test_who_changed_the_role_cannot_approve(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        with db.session() as s:
            made = make_user(s, "promoted", Role.ANALYST, s.get(UnionOrg, world.union_a.id))
        r = client.patch(
            f"/api/v1/users/{made.id}", json={"role": "staff"}, headers=world.auth("orgadmin_a")
        )
        assert r.status_code == 200, r.text
        url = self._unmasked_request(client, world, self._login(client, "promoted"))
        assert (
            client.post(f"{url}/approve", json={}, headers=world.auth("orgadmin_a")).status_code
            == 403
        )

    def test_the_rule_is_reusable_and_falls_back_to_the_audit_trail(
        self, db: Database, world: World
    ) -> None:
        """An account from before the facts were recorded: its maker is in the audit."""
        with db.session() as s:
            old = make_user(s, "old_staff", Role.STAFF, s.get(UnionOrg, world.union_a.id))
            s.add(
                AuditEvent(
                    actor_user_id=world.users["orgadmin_a"].id,
                    action="user.create",
                    object_type="user",
                    object_id=str(old.id),
                )
            )
            s.flush()
            approver = Principal.for_user(
                user_id=world.users["orgadmin_a"].id,
                username="orgadmin_a",
                role=Role.ORG_ADMIN,
                org_id=world.union_a.id,
                org_path=world.union_a.path,
            )
            with pytest.raises(NotIndependent):
                require_independent(
                    s,
                    approver,
                    old.id,
                    permission=Permission.EXPORT_APPROVE,
                    org_id=world.union_a.id,
                )
            # Over data outside the approver's scope: not found, whoever asks.
            with pytest.raises(NotFound):
                require_independent(
                    s,
                    approver,
                    world.users["staff_b"].id,
                    permission=Permission.EXPORT_APPROVE,
                    org_id=world.city_a.id,
                )


class TestSplitting:
    """The 1,000-record threshold holds for the day: exports of child organisations
    (716 + 465) no longer pass one by one while the parent's waits."""

    def test_parts_that_add_up_past_the_threshold_wait(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        with db.session() as s:
            union_c = make_org(
                s, "太原二矿工会", OrgLevel.GRASSROOTS, "140106", world.city_a, OrgKind.ENTERPRISE
            )
            bulk_members(s, crypto, world.union_a, world.ent_a, 715, "甲")
            bulk_members(s, crypto, union_c, None, 465, "乙")
        first = _create(client, world, org_id=world.union_a.id)
        assert (first["record_count"], first["status"]) == (716, "approved")
        second = _create(client, world, org_id=union_c.id)
        assert (second["record_count"], second["status"]) == (465, "pending")

    def test_exports_count_in_the_read_budget(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        """Rows nobody else approved weigh like list rows in the same daily budget."""
        with db.session() as s:
            bulk_members(s, crypto, world.union_a, world.ent_a, 899, "甲")
        db.guard_policy = GuardPolicy(min_normal_daily=0, alert_margin=100, hard_margin=500)
        db.sessionmaker = db.make_sessionmaker(
            db.sessionmaker.kw["bind"], join_transaction_mode="create_savepoint"
        )
        request = _create(client, world, org_id=world.union_a.id)
        assert request["status"] == "approved"
        r = client.get(f"/api/v1/exports/{request['id']}/download", headers=world.auth("staff_a"))
        assert r.status_code == 403  # 900 rows past a normal of 0 with a margin of 500
        with db.session() as s:
            assert s.get(User, world.users["staff_a"].id).suspended_at is not None  # type: ignore[union-attr]
