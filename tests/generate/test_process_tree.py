"""``smartunion generate`` with its encryption helper: no process outlives the command, whether it
is killed (-9) or stopped (SIGTERM, Ctrl-C). Subprocesses, a fresh data folder each."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

SMARTUNION = str(Path(sys.executable).with_name("smartunion"))
MEMBERS = "400000"  # over PARALLEL_FROM: the helper process starts

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux") or (os.cpu_count() or 1) < 2,
    reason="the helper runs on a multi-core Linux machine only",
)


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SMARTUNION_")}
    env.update({"SMARTUNION_DATA_DIR": str(data), "COLUMNS": "120"})
    return env


def _children(pid: int) -> set[int]:
    """Every descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {p for p, pp in parents.items() if pp in frontier} - found
        found |= frontier
    return found


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(pid)
    return alive


def _start(data: Path) -> tuple[subprocess.Popen[str], set[int]]:
    assert subprocess.run([SMARTUNION, "init"], env=_env(data), capture_output=True).returncode == 0
    proc = subprocess.Popen(
        [SMARTUNION, "generate", "--members", MEMBERS, "--seed", "1"],
        env=_env(data),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a shell's background job would start with Ctrl-C ignored.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 60
    kids: set[int] = set()
    while time.monotonic() < deadline:
        kids = _children(proc.pid)
        if len(kids) >= 2:  # the helper and multiprocessing's resource tracker
            time.sleep(1.0)  # the helper has its key ring: it is at work
            return proc, _children(proc.pid)
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"the helper did not start (children: {kids})")


def _gone(pids: set[int], seconds: float = 20) -> set[int]:
    deadline = time.monotonic() + seconds
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    return _alive(pids)


def _members(data: Path) -> int:
    with sqlite3.connect(data / "smartunion.db") as conn:
        return int(conn.execute("SELECT count(*) FROM member").fetchone()[0])


def test_kill_9_takes_the_helpers_with_it(tmp_path: Path) -> None:
    proc, kids = _start(tmp_path / "var")
    proc.kill()
    proc.wait()
    left = _gone(kids)
    for pid in left:  # do not leave them to the next test
        os.kill(pid, signal.SIGKILL)
    assert not left, "helpers outlived a killed generate"


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_ctrl_c_stop_the_whole_tree_cleanly(
    tmp_path: Path, sig: signal.Signals
) -> None:
    data = tmp_path / "var"
    proc, kids = _start(data)
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + sig, stderr
    assert f"stopped by {sig.name}: nothing was generated" in " ".join(stderr.split())
    assert "Traceback" not in stderr
    left = _gone(kids)
    for pid in left:
        os.kill(pid, signal.SIGKILL)
    assert not left
    assert _members(data) == 0
