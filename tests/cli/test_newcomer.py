"""Commands as a new user meets them (fresh interpreter, fresh data folder): before `init`,
organisation codes in a pipe and a terminal, valid levels, the addresses `serve` prints, and
what `demo-accounts` says."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SMARTUNION = str(Path(sys.executable).with_name("smartunion"))


def _env(data: Path, **env: str) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("SMARTUNION_")}
    environ.update({"SMARTUNION_DATA_DIR": str(data), **env})
    return environ


def run(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [SMARTUNION, *args],
        env=_env(data, **{"COLUMNS": "200", **env}),
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    data = tmp_path_factory.mktemp("newcomer") / "var"
    assert run(data, "init").returncode == 0
    assert run(data, "generate", "--members", "200", "--seed", "4").returncode == 0
    return data


def test_generate_before_init_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "var"
    r = run(data, "generate", "--members", "100")
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    message = " ".join(r.stderr.split())
    assert message == f"error: nothing is installed at {data}: run `smartunion init` first"
    assert not data.exists()
    assert list(tmp_path.iterdir()) == []


class TestOrgsList:
    def _codes(self, data: Path) -> list[str]:
        return [o["code"] for o in json.loads(run(data, "orgs", "list", "--json").stdout)]

    def test_a_pipe_gets_whole_codes_one_a_line(self, installed: Path) -> None:
        r = run(installed, "orgs", "list", COLUMNS="80")
        lines = r.stdout.splitlines()
        assert lines[0].split("\t") == ["code", "name", "level", "region", "parent"]
        assert [line.split("\t")[0] for line in lines[1:]] == self._codes(installed)

    @pytest.mark.skipif(shutil.which("script") is None, reason="needs script(1) for a terminal")
    def test_an_80_column_terminal_gets_whole_codes(self, installed: Path) -> None:
        r = subprocess.run(
            ["script", "-qec", f"{SMARTUNION} orgs list --level county", "/dev/null"],
            env=_env(installed, COLUMNS="80", TERM="dumb", NO_COLOR="1"),
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert r.returncode == 0, r.stdout
        shown = r.stdout
        county = json.loads(run(installed, "orgs", "list", "--json", "--level", "county").stdout)
        assert county
        for org in county:
            assert org["code"] in shown
        assert max(len(line) for line in shown.splitlines()) <= 81

    def test_level_takes_only_valid_levels(self, installed: Path) -> None:
        r = run(installed, "orgs", "list", "--level", "bogus")
        assert r.returncode == 2
        text = " ".join(r.stderr.split())
        assert "'national', 'province', 'city', 'county', 'grassroots'" in text
        helped = " ".join(run(installed, "orgs", "list", "--help").stdout.split())
        assert "national|province|city|count" in helped.replace(" ", "")
        county = json.loads(run(installed, "orgs", "list", "--json", "--level", "COUNTY").stdout)
        assert county
        assert {o["level"] for o in county} == {"county"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_serve_prints_the_member_portal_too(installed: Path) -> None:
    port = _free_port()
    proc = subprocess.Popen(
        [SMARTUNION, "serve", "--port", str(port)],
        env=_env(installed, COLUMNS="200"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        lines: list[str] = []
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while time.monotonic() < deadline and not any("/docs" in x for x in lines):
            lines.append(proc.stdout.readline())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    text = "".join(lines)
    assert f"member portal:  http://127.0.0.1:{port}/m/" in text
    assert f"staff console:  http://127.0.0.1:{port}/console" in text


def test_demo_accounts_tells_only_admins_without_an_authenticator(installed: Path) -> None:
    first = run(installed, "demo-accounts")
    assert first.returncode == 0, first.stderr
    assert "admin and city_admin set up a TOTP authenticator" in " ".join(first.stdout.split())
    with sqlite3.connect(installed / "smartunion.db") as conn:
        conn.execute("UPDATE app_user SET totp_enabled = 1 WHERE username = 'admin'")
    second = " ".join(run(installed, "demo-accounts").stdout.split())
    assert "city_admin set up a TOTP authenticator" in second
    assert "admin and" not in second
    with sqlite3.connect(installed / "smartunion.db") as conn:
        conn.execute("UPDATE app_user SET totp_enabled = 1 WHERE username = 'city_admin'")
    third = " ".join(run(installed, "demo-accounts").stdout.split())
    assert "TOTP" not in third
