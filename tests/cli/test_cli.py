"""The ``smartunion`` command on a fresh data directory (SQLite file)."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from smartunion.cli import app
from smartunion.config import get_settings
from smartunion.db import Database
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import load_keyring
from tests.factories import PASSWORD, build_world

runner = CliRunner()


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("SMARTUNION_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("SMARTUNION_DATABASE_URL", raising=False)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


@pytest.fixture
def initialised(data_dir: Path) -> Path:
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    return data_dir


def _world(data_dir: Path) -> None:
    crypto = FieldCrypto(load_keyring(data_dir / "secret.key"))
    db = Database.from_url(
        f"sqlite:///{data_dir / 'smartunion.db'}", audit_key=crypto.ring.audit_key
    )
    with db.session() as s:
        build_world(s, crypto)
    db.engine.dispose()


def test_init_creates_database_and_private_key(initialised: Path) -> None:
    assert (initialised / "smartunion.db").exists()
    mode = stat.S_IMODE(os.stat(initialised / "secret.key").st_mode)
    assert mode == 0o600
    again = runner.invoke(app, ["init"])  # idempotent
    assert again.exit_code == 0


def test_command_before_init_says_what_to_do(data_dir: Path) -> None:
    result = runner.invoke(app, ["users", "list"])
    assert result.exit_code == 1
    assert "smartunion init" in result.output
    assert "Traceback" not in result.output


def test_orgs_list_json(initialised: Path) -> None:
    _world(initialised)
    result = runner.invoke(app, ["orgs", "list", "--json"])
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    by_name = {i["name"]: i for i in items}
    assert {"code", "name", "level", "parent_code"} <= set(items[0])
    province = by_name["山西省总工会"]
    assert province["level"] == "province"
    assert province["parent_code"] is None
    assert by_name["太原市总工会"]["parent_code"] == province["code"]


def test_users_create_and_list(initialised: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _world(initialised)
    code = json.loads(runner.invoke(app, ["orgs", "list", "--json"]).stdout)[0]["code"]
    monkeypatch.setenv("SMARTUNION_PASSWORD", PASSWORD)
    result = runner.invoke(
        app, ["users", "create", "--username", "li_ming", "--role", "staff", "--org", code]
    )
    assert result.exit_code == 0, result.output
    listing = runner.invoke(app, ["users", "list"])
    assert "li_ming" in listing.output
    assert "staff" in listing.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--role", "emperor", "--org", "X"], "emperor"),
        (["--role", "staff", "--org", "891400000000000000"], "no organisation"),
    ],
)
def test_users_create_rejects_bad_input(
    initialised: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("SMARTUNION_PASSWORD", PASSWORD)
    result = runner.invoke(app, ["users", "create", "--username", "x_user", *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_weak_password_is_refused(initialised: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _world(initialised)
    code = json.loads(runner.invoke(app, ["orgs", "list", "--json"]).stdout)[0]["code"]
    monkeypatch.setenv("SMARTUNION_PASSWORD", "short")
    result = runner.invoke(
        app, ["users", "create", "--username", "weak", "--role", "staff", "--org", code]
    )
    assert result.exit_code == 1
    assert "at least" in result.output


def test_duplicate_username_is_one_line(initialised: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _world(initialised)
    code = json.loads(runner.invoke(app, ["orgs", "list", "--json"]).stdout)[0]["code"]
    monkeypatch.setenv("SMARTUNION_PASSWORD", PASSWORD)
    result = runner.invoke(
        app, ["users", "create", "--username", "staff_a", "--role", "staff", "--org", code]
    )
    assert result.exit_code == 1
    assert "taken" in result.output
