"""Load benchmark: the HTTP server under wrk, per database backend (`make bench-load`).

For SQLite and, when 127.0.0.1:5432 answers, PostgreSQL (a fresh database, dropped after):

1. a fresh data folder, ``smartunion init`` and ``smartunion generate --members N``;
2. member and staff accounts with bearer tokens, minted in a child interpreter without the
   (deliberately slow) password log-in, and member ids for the staff's detail reads;
3. ``smartunion serve`` on a free loopback port;
4. wrk scenarios (bench/load/scenario.lua): /healthz (the ceiling of the set-up), the
   member profile, staff list and detail reads and a mixed workload with writes, saturated
   (closed loop) and paced (think time per connection), then a soak in 30 s slices with the
   server's memory sampled after each;
5. after each scenario ``smartunion audit verify`` and the audit rows it added, which must
   match the audited 2xx answers one for one.

The report is Markdown (default bench/results/load.md). Every request goes to 127.0.0.1.

    .venv/bin/python bench/load.py --out bench/results/load.md --members 100000
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import NullPool

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "load" / "scenario.lua"
HOST = "127.0.0.1"
PG_ADMIN = os.environ.get(
    "SMARTUNION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SMARTUNION = [sys.executable, "-m", "smartunion"]

BENCH_PASSWORD = "Bench-Union-2026!x"  # noqa: S105  (throw-away accounts in a temp database)
MEMBER_USERS = 200
STAFF_USERS = 20
DETAIL_IDS = 2000
LIST_PAGES = 100
TOKEN_HOURS = 12
LARGE = "100000000"

# The settings the bench sets for the server and the CLI; others pass through as they are.
BENCH_ENV = {
    "SMARTUNION_API_RATE_LIMIT": "0",  # no per-token throttling of the load
    "SMARTUNION_DAILY_READ_QUOTA": LARGE,  # the insider guard must not suspend the bench's staff
    "SMARTUNION_GUARD_MIN_NORMAL_DAILY": LARGE,
    "SMARTUNION_GUARD_HARD_MARGIN": LARGE,  # details and reveals have floors of their own
}
DROPPED_ENV = {"SMARTUNION_SECRET_KEY_FILE"}  # keys live in the fresh data folder

MIX = {"profile": 60, "list": 15, "detail": 20, "write": 5}
STAFF_READS = {"list": 15, "detail": 20}
AUDITED_KINDS = {"profile", "list", "detail", "write"}
# Every audited request leaves exactly one read event: a PATCH answers with the record, so
# it is a member.read (via member.update) besides its member.update, which is not counted.
REQUEST_ACTIONS = ("member.read", "member.list")
PACED_GOAL_P99_MS = 50.0
PACED_MIN_SERVED = 0.85  # p99 ≤ 50 ms leaves ≥ 85% of C / think time


# --------------------------------------------------------------------------- data shapes


@dataclasses.dataclass(frozen=True)
class Scenario:
    key: str
    label: str
    connections: int
    mix: dict[str, int]
    rate: float | None = None  # offered req/s in total when paced; None = saturated

    @property
    def audited(self) -> bool:
        return bool(set(self.mix) & AUDITED_KINDS)

    @property
    def mode(self) -> str:
        return "saturated" if self.rate is None else "paced"

    @property
    def delay_ms(self) -> int:
        """Think time per connection: C connections at ``rate`` in total, ±50% in Lua."""
        return 0 if self.rate is None else round(1000 * self.connections / self.rate)


@dataclasses.dataclass
class WrkResult:
    requests: int = 0
    duration_s: float = 0.0
    sent: int = 0
    responses: int = 0
    socket_errors: dict[str, int] = dataclasses.field(default_factory=dict)
    statuses: dict[int, int] = dataclasses.field(default_factory=dict)
    latency_ms: dict[str, float] = dataclasses.field(default_factory=dict)
    failure: str = ""  # wrk itself failed: no figures

    @property
    def rps(self) -> float:
        return self.requests / self.duration_s if self.duration_s else 0.0

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def shed(self) -> int:
        return self.statuses.get(503, 0)

    @property
    def bad_statuses(self) -> dict[int, int]:
        return {s: n for s, n in self.statuses.items() if not 200 <= s < 300 and s != 503}

    @property
    def errors(self) -> int:
        """Socket errors, wrk timeouts and every non-2xx answer except 503."""
        return sum(self.socket_errors.values()) + sum(self.bad_statuses.values())

    @property
    def in_flight(self) -> int:
        """Requests sent without an answer: abandoned at the stop or lost to socket errors."""
        return max(self.sent - self.responses, 0)

    def latency(self, key: str) -> float | None:
        """A latency figure in ms, or None when nothing was answered."""
        return self.latency_ms.get(key) if self.requests else None

    def error_detail(self) -> str:
        parts = [f"{k} {v}" for k, v in self.socket_errors.items() if v]
        parts += [f"HTTP {s}: {n}" for s, n in sorted(self.bad_statuses.items())]
        return ", ".join(parts)


@dataclasses.dataclass
class AuditCheck:
    verify_rc: int | None = None
    verify_output: str = ""
    verify_seconds: float = 0.0
    new_events: int = 0
    request_events: int = 0  # member.read / member.list / member.update
    other_events: dict[str, int] = dataclasses.field(default_factory=dict)
    expected: int = 0  # audited 2xx answers
    slack: int = 0  # answers wrk never saw (in flight at the stop, socket errors)

    @property
    def verify_text(self) -> str:
        if self.verify_rc is None:
            return "not run"
        return "intact" if self.verify_rc == 0 else f"FAILED (exit {self.verify_rc})"

    @property
    def events_text(self) -> str:
        diff = self.request_events - self.expected
        if diff == 0:
            text_ = f"yes ({self.request_events})"
        elif 0 < diff <= self.slack:
            text_ = f"yes: {self.expected} + {diff} after the stop (≤ {self.slack} unanswered)"
        else:
            text_ = f"**NO**: {self.request_events} events, {self.expected} audited 2xx"
        if self.other_events:
            text_ += "; also " + ", ".join(f"{n} {a}" for a, n in self.other_events.items())
        return text_


@dataclasses.dataclass
class Outcome:
    scenario: Scenario
    result: WrkResult
    audit: AuditCheck


@dataclasses.dataclass
class Slice:
    index: int
    result: WrkResult
    rss_mb: float | None


@dataclasses.dataclass
class BackendReport:
    name: str
    url: str = ""
    setup: dict[str, float] = dataclasses.field(default_factory=dict)
    accounts: dict[str, int] = dataclasses.field(default_factory=dict)
    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    slices: list[Slice] = dataclasses.field(default_factory=list)
    soak_audit: AuditCheck | None = None
    slice_seconds: int = 0
    rss_start_mb: float | None = None
    server_log: str = ""
    skipped: str = ""
    problems: list[str] = dataclasses.field(default_factory=list)


# --------------------------------------------------------------------------- accounts


def prepare_accounts(out_dir: Path) -> None:
    """Runs in a child interpreter with the backend's environment: accounts, tokens, ids."""
    from sqlalchemy import func, select

    import smartunion.models  # noqa: F401  (registers every ORM model)
    from smartunion.config import Settings
    from smartunion.members.models import Member, MemberStatus
    from smartunion.orgs.models import UnionOrg
    from smartunion.security import service as identity
    from smartunion.security.models import User
    from smartunion.security.permissions import Role
    from smartunion.web.state import AppState

    state = AppState.from_settings(Settings())
    lifetime = dt.timedelta(hours=TOKEN_HOURS)
    with state.db.session() as s:
        root = s.scalar(
            select(UnionOrg)
            .where(UnionOrg.parent_id.is_(None))
            .order_by(func.length(UnionOrg.path), UnionOrg.id)
            .limit(1)
        )
        if root is None:
            raise SystemExit("no organisations: was the province generated?")
        active = Member.status == MemberStatus.ACTIVE
        members = s.scalars(select(Member).where(active).order_by(Member.id).limit(MEMBER_USERS))
        chosen = list(members)

        def bearer(user: User) -> str:
            return identity.open_session(s, user, kind="bearer", lifetime=lifetime)

        # Member accounts are opened only on the server, as the operator's command does.
        member_tokens = [
            bearer(
                identity.create_member_account(
                    s,
                    member_id=m.id,
                    username=f"bench_member_{m.id}",
                    password=BENCH_PASSWORD,
                    channel=identity.AccountChannel.OPERATOR_CLI,
                )
            )
            for m in chosen
        ]
        staff_tokens = [
            bearer(
                identity.create_user(
                    s,
                    None,
                    username=f"bench_staff_{i}",
                    password=BENCH_PASSWORD,
                    role=Role.STAFF,
                    org=root,
                )
            )
            for i in range(STAFF_USERS)
        ]
        ids = s.scalars(
            select(Member.id)
            .join(UnionOrg, UnionOrg.id == Member.org_id)
            .where(active, UnionOrg.path.startswith(root.path))
            .order_by(func.random())
            .limit(DETAIL_IDS)
        ).all()
    (out_dir / "member_tokens.txt").write_text("\n".join(member_tokens) + "\n")
    (out_dir / "staff_tokens.txt").write_text("\n".join(staff_tokens) + "\n")
    (out_dir / "member_ids.txt").write_text("\n".join(map(str, ids)) + "\n")
    print(json.dumps({"members": len(member_tokens), "staff": len(staff_tokens), "ids": len(ids)}))


# --------------------------------------------------------------------------- processes


def backend_env(data_dir: Path, url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in DROPPED_ENV}
    env.update(BENCH_ENV)
    env["SMARTUNION_DATA_DIR"] = str(data_dir)
    env["SMARTUNION_DATABASE_URL"] = url  # empty: the SQLite file under the data folder
    return env


def run_cli(env: dict[str, str], *args: str, timeout: float = 3600) -> tuple[float, str]:
    """A CLI command in a child: (seconds, output); raises with the output on failure."""
    started = time.perf_counter()
    done = subprocess.run(
        [*SMARTUNION, *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if done.returncode != 0:
        raise RuntimeError(f"smartunion {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return time.perf_counter() - started, done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    return children


def tree_rss_mb(pid: int) -> float | None:
    """Resident memory of a process and its descendants, MB (shared pages counted per process)."""
    try:
        import psutil  # type: ignore[import-untyped]
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
            rss: int = sum(p.memory_info().rss for p in procs)
            return rss / 2**20
        except psutil.Error:
            return None
    children = _proc_children()
    todo, total_kb = [pid], 0
    while todo:
        current = todo.pop()
        todo.extend(children.get(current, []))
        try:
            status = Path(f"/proc/{current}/status").read_text()
        except OSError:
            continue
        total_kb += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
    return total_kb / 1024 if total_kb else None


class Server:
    """``smartunion serve`` in its own process group, stopped (whole group) on exit."""

    def __init__(self, env: dict[str, str], workers: int, log_path: Path) -> None:
        self.env = env
        self.workers = workers
        self.log_path = log_path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def __enter__(self) -> Server:
        port, workers = str(self.port), str(self.workers)
        with self.log_path.open("wb") as log:
            self.proc = subprocess.Popen(
                [*SMARTUNION, "serve", "--host", HOST, "--port", port, "--workers", workers],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"the server exited at start:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(f"{self.url}/healthz", timeout=2) as answer:  # noqa: S310
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"the server did not answer /healthz in {timeout:.0f} s")

    def rss_mb(self) -> float | None:
        return tree_rss_mb(self.proc.pid) if self.alive() and self.proc else None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.returncode is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, sig)
            try:
                self.proc.wait(timeout=wait)
                break
            except subprocess.TimeoutExpired:
                continue
        # Workers that outlived their parent are still in the group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)


# --------------------------------------------------------------------------- wrk


def run_wrk(
    url: str,
    scenario: Scenario,
    seconds: int,
    files: dict[str, Path],
    *,
    timeout_s: int,
    threads: int,
) -> WrkResult:
    args = [
        f"mix={','.join(f'{k}:{w}' for k, w in scenario.mix.items())}",
        f"delay_ms={scenario.delay_ms}",
        f"pages={LIST_PAGES}",
        *(f"{name}={path}" for name, path in files.items()),
    ]
    cmd = [
        "wrk",
        f"--threads={min(threads, scenario.connections)}",
        f"--connections={scenario.connections}",
        f"--duration={seconds}s",
        f"--timeout={timeout_s}s",
        "--latency",
        f"--script={SCRIPT}",
        url,
        "--",
        *args,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=seconds + timeout_s + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    line = next((x for x in out.splitlines() if x.startswith("LOADJSON ")), None)
    if line is None:
        return WrkResult(failure=f"wrk exit {proc.returncode}: {(err or out).strip()[-300:]}")
    data = json.loads(line.removeprefix("LOADJSON "))
    return WrkResult(
        requests=data["requests"],
        duration_s=data["duration_s"],
        sent=data["sent"],
        responses=data["responses"],
        socket_errors={k: v for k, v in data["errors"].items() if k != "status"},
        statuses={int(k): v for k, v in data["statuses"].items()},
        latency_ms=data["latency_ms"],
    )


# --------------------------------------------------------------------------- audit


class AuditCounter:
    """Audit rows counted straight in the database (rows, sealed or not)."""

    def __init__(self, url: str) -> None:
        self.engine: Engine = create_engine(url, poolclass=NullPool)

    def snapshot(self) -> tuple[int, int]:
        with self.engine.connect() as conn:
            count, top = conn.execute(
                text("SELECT count(*), coalesce(max(id), 0) FROM audit_event")
            ).one()
        return int(count), int(top)

    def actions_after(self, top: int) -> dict[str, int]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT action, count(*) FROM audit_event WHERE id > :top GROUP BY action"),
                {"top": top},
            ).all()
        return {str(a): int(n) for a, n in rows}

    def settle(self, quiet: int = 3, timeout: float = 90) -> tuple[int, int]:
        """Wait until the count has not moved for ``quiet`` seconds: the server finishes
        what wrk abandoned at its stop (a request may wait on the server for a while)."""
        last, still = self.snapshot(), 0
        deadline = time.monotonic() + timeout
        while still < quiet and time.monotonic() < deadline:
            time.sleep(1.0)
            now = self.snapshot()
            still = still + 1 if now == last else 0
            last = now
        return last

    def dispose(self) -> None:
        self.engine.dispose()


def check_audit(
    env: dict[str, str],
    counter: AuditCounter,
    before: tuple[int, int],
    results: list[WrkResult],
    audited: bool,
) -> AuditCheck:
    after = counter.settle()
    actions = counter.actions_after(before[1])
    request_events = sum(actions.pop(a, 0) for a in REQUEST_ACTIONS)
    check = AuditCheck(
        new_events=after[0] - before[0],
        request_events=request_events,
        other_events=actions,
        expected=sum(r.ok for r in results) if audited else 0,
        slack=sum(r.in_flight for r in results) if audited else 0,
    )
    started = time.perf_counter()
    try:
        done = subprocess.run(
            [*SMARTUNION, "audit", "verify"], env=env, capture_output=True, text=True, timeout=1800
        )
        check.verify_rc = done.returncode
        check.verify_output = " ".join((done.stdout + done.stderr).split())[-300:]
    except subprocess.TimeoutExpired:
        check.verify_output = "timed out after 1800 s"
    check.verify_seconds = time.perf_counter() - started
    return check


# --------------------------------------------------------------------------- backends


def postgres_admin() -> Engine | None:
    try:
        with socket.create_connection((HOST, 5432), timeout=2):
            pass
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with admin.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # absent or refused: the report says so
        print(f"PostgreSQL skipped: {type(exc).__name__}: {exc}", file=sys.stderr)
        return None
    return admin


@contextlib.contextmanager
def database(backend: str, data_dir: Path) -> Iterator[tuple[str, str]]:
    """(URL for the server, empty for SQLite's default; URL to count audit rows with)."""
    if backend == "sqlite":
        yield "", f"sqlite:///{(data_dir / 'smartunion.db').as_posix()}"
        return
    admin = postgres_admin()
    if admin is None:
        raise LookupError("PostgreSQL does not answer on 127.0.0.1:5432")
    name = f"su_bench_{os.getpid()}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    try:
        yield url, url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def scenarios() -> list[Scenario]:
    profile, mixed = {"profile": 1}, dict(MIX)
    return [
        Scenario("healthz", "/healthz (ceiling)", 100, {"healthz": 1}),
        *(Scenario("profile", "member profile", c, profile) for c in (10, 100, 300)),
        Scenario("profile", "member profile", 100, profile, rate=330),
        Scenario("list", "staff list page", 100, {"list": 1}),
        Scenario("detail", "staff member detail", 100, {"detail": 1}),
        Scenario("staff", "staff list + detail", 100, STAFF_READS, rate=220),
        *(Scenario("mixed", "mixed", c, mixed) for c in (10, 100, 300)),
    ]


def run_backend(name: str, opts: argparse.Namespace, report: BackendReport) -> None:
    with contextlib.ExitStack() as stack:
        data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="su-load-")))
        try:
            server_url, count_url = stack.enter_context(database(name, data_dir))
        except LookupError as exc:
            report.skipped = str(exc)
            return
        report.url = server_url or "SQLite file in the data folder"
        env = backend_env(data_dir, server_url)
        print(f"[{name}] init + generate {opts.members:,} members", file=sys.stderr)
        report.setup["init_s"], _ = run_cli(env, "init")
        report.setup["generate_s"], _ = run_cli(
            env, "generate", "--members", str(opts.members), "--seed", "1"
        )
        started = time.perf_counter()
        done = subprocess.run(
            [sys.executable, str(Path(__file__).resolve()), "--prepare", str(data_dir)],
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
        )
        if done.returncode != 0:
            raise RuntimeError(f"account set-up failed:\n{done.stdout}\n{done.stderr}")
        report.setup["accounts_s"] = time.perf_counter() - started
        report.accounts = json.loads(done.stdout.strip().splitlines()[-1])
        files = {
            "members": data_dir / "member_tokens.txt",
            "staff": data_dir / "staff_tokens.txt",
            "ids": data_dir / "member_ids.txt",
        }
        counter = AuditCounter(count_url)
        stack.callback(counter.dispose)
        log_path = data_dir / "server.log"
        stack.callback(keep_log, report, log_path, opts.logs)  # runs once the server is down
        server = stack.enter_context(Server(env, opts.workers, log_path))
        report.rss_start_mb = server.rss_mb()
        wrk = {"timeout_s": opts.timeout, "threads": opts.wrk_threads}

        for scenario in scenarios():
            if not server.alive():
                report.problems.append(f"server exited before {scenario.label}")
                break
            print(
                f"[{name}] {scenario.label}, {scenario.connections} conns, {scenario.mode}",
                file=sys.stderr,
            )
            before = counter.settle()
            result = run_wrk(server.url, scenario, opts.duration, files, **wrk)
            audit = check_audit(env, counter, before, [result], scenario.audited)
            report.outcomes.append(Outcome(scenario, result, audit))

        if opts.soak_seconds > 0 and server.alive():
            soak = Scenario("soak", "mixed soak", 100, dict(MIX))
            slices = max(1, round(opts.soak_seconds / opts.slice_seconds))
            seconds = max(1, round(opts.soak_seconds / slices))
            report.slice_seconds = seconds
            print(f"[{name}] soak: {slices} × {seconds} s", file=sys.stderr)
            before = counter.settle()
            for i in range(slices):
                if not server.alive():
                    report.problems.append(f"server exited during soak slice {i + 1}")
                    break
                result = run_wrk(server.url, soak, seconds, files, **wrk)
                report.slices.append(Slice(i + 1, result, server.rss_mb()))
            report.soak_audit = check_audit(
                env, counter, before, [s.result for s in report.slices], True
            )


def keep_log(report: BackendReport, log_path: Path, logs: Path | None) -> None:
    """Sum up the server's log in the report (tracebacks, error lines, the last one) and
    keep a copy in ``logs`` when asked."""
    try:
        lines = log_path.read_text(errors="replace").splitlines()
    except OSError:
        return
    tracebacks = sum(line.startswith("Traceback") for line in lines)
    errors = [line for line in lines if "ERROR" in line or "Error:" in line]
    if not tracebacks and not errors:
        report.server_log = "no errors logged"
    else:
        last = errors[-1].strip()[:200] if errors else ""
        report.server_log = f"{tracebacks} tracebacks, {len(errors)} error lines; last: `{last}`"
    if logs is not None:
        logs.mkdir(parents=True, exist_ok=True)
        copy = logs / f"load-server-{report.name}.log"
        shutil.copyfile(log_path, copy)
        report.server_log += f" (whole log: {copy})"


# --------------------------------------------------------------------------- report


def fmt_ms(value: float | None) -> str:
    if value is None or value != value:  # absent, or NaN
        return "–"
    return f"{value:.1f}" if value < 100 else f"{value:,.0f}"


def machine() -> dict[str, str]:
    model = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f"{kb / 2**20:.0f} GiB"
    wrk_version = ""
    with contextlib.suppress(OSError):
        done = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        wrk_version = (done.stdout or done.stderr).split(" Copyright")[0].strip()
    return {
        "cores": str(os.cpu_count()),
        "arch": platform.machine(),
        "cpu": model,
        "memory": memory,
        "python": platform.python_version(),
        "wrk": wrk_version,
    }


def latency_cells(r: WrkResult) -> str:
    return " | ".join(fmt_ms(r.latency(k)) for k in ("p50", "p99", "max"))


def scenario_rows(report: BackendReport) -> list[str]:
    ceiling = next(
        (o.result.rps for o in report.outcomes if o.scenario.key == "healthz" and o.result.rps),
        0.0,
    )
    rows = [
        "| scenario | conns | mode | offered req/s | req/s | p50 ms | p99 ms | max ms "
        "| errors (non-503) | 503 | no answer | × /healthz | audit verify "
        "| events = audited 2xx |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|---|",
    ]
    for o in report.outcomes:
        r, s = o.result, o.scenario
        offered = f"≈ {s.rate:.0f} (think {s.delay_ms} ms)" if s.rate else "max"
        head = f"| {s.label} | {s.connections} | {s.mode} | {offered}"
        events = o.audit.events_text if s.audited else f"n/a ({o.audit.new_events} new)"
        tail = f"| {o.audit.verify_text} | {events} |"
        if r.failure:
            rows.append(f"{head} | wrk failed: {r.failure} | | | | | | | {tail}")
            continue
        ratio = f"{r.rps / ceiling:.2f}" if ceiling and s.key == "profile" else ""
        errors = f"{r.errors:,}" + (f" ({r.error_detail()})" if r.errors else "")
        rows.append(
            f"{head} | {r.rps:,.0f} | {latency_cells(r)} | {errors} | {r.shed:,} "
            f"| {r.in_flight:,} | {ratio} {tail}"
        )
    return rows


def goal_lines(report: BackendReport) -> list[str]:
    lines = []
    for o in report.outcomes:
        s, r = o.scenario, o.result
        if s.rate is None or r.failure:
            continue
        p99 = r.latency("p99")
        unmet = [
            *([] if r.rps >= PACED_MIN_SERVED * s.rate else [f"served < {PACED_MIN_SERVED:.0%}"]),
            *([] if p99 is not None and p99 <= PACED_GOAL_P99_MS else ["p99"]),
            *([] if r.errors == 0 else ["errors"]),
            *([] if r.shed == 0 else ["503s"]),
        ]
        verdict = "**MET**" if not unmet else f"**NOT MET** ({', '.join(unmet)})"
        lines.append(
            f"- {s.label}, {s.connections} connections paced at ≈ {s.rate:.0f} req/s offered: "
            f"{r.rps:,.0f} req/s served, p99 {fmt_ms(p99)} ms, {r.errors:,} errors, "
            f"{r.shed:,} × 503 → {verdict}"
        )
    if lines:
        lines.append(
            f"\n(Goal: p99 ≤ {PACED_GOAL_P99_MS:.0f} ms, no errors or 503s, and at least "
            f"{PACED_MIN_SERVED:.0%} of the nominal rate served: a slow server paces itself "
            "down, since each connection waits for its answer before its think time.)"
        )
    return lines


def soak_rows(report: BackendReport, slice_seconds: int) -> list[str]:
    rows = [
        "| slice | from s | req/s | p50 ms | p99 ms | max ms | errors (non-503) | 503 "
        "| no answer | server RSS MB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for sl in report.slices:
        r = sl.result
        start = (sl.index - 1) * slice_seconds
        rss = f"{sl.rss_mb:,.0f}" if sl.rss_mb is not None else "–"
        if r.failure:
            rows.append(f"| {sl.index} | {start} | wrk failed: {r.failure} | | | | | | | {rss} |")
            continue
        rows.append(
            f"| {sl.index} | {start} | {r.rps:,.0f} | {latency_cells(r)} | {r.errors:,} "
            f"| {r.shed:,} | {r.in_flight:,} | {rss} |"
        )
    return rows


LITTLE = """\
**Reading the figures (Little's law).** A saturated run is a closed loop: each of C
connections sends its next request as soon as the previous one is answered, so the mean
latency is C / throughput whatever the server does: 100 connections at 500 req/s must show
≈ 200 ms. Saturated runs measure capacity (req/s, and whether errors or 503s appear above
it); they cannot show a 50 ms p99 at 100 connections unless the server does 2,000+ req/s.
The goal "100 users at ≈ 300 requests/s, p99 ≤ 50 ms" is therefore measured by the paced
runs: each connection waits ≈ C / rate (±50%, random) between requests, so the offered load
is about C / (think time + latency) and the latency is the server's answer time at that load.
wrk runs on the same machine as the server and takes some of its CPU.

Errors are socket errors (connect, read, write), wrk timeouts (answers slower than the
--timeout, {timeout} s) and every non-2xx answer other than 503; 503s (load shed above
capacity) are counted apart. "events = audited 2xx": the member.read/list audit rows the
run added against the 2xx answers to audited requests (profile, list, detail and PATCH each
leave one such read, a PATCH also its member.update; /healthz is audited not at all).
Requests wrk abandoned at its stop may still be answered and audited by the server: up to
that many extra rows are accepted and shown.
"""


def render(reports: list[BackendReport], opts: argparse.Namespace, note: str) -> str:
    m = machine()
    out = [
        "# SmartUnion load benchmark",
        "",
        f"Run {dt.datetime.now().astimezone():%Y-%m-%d %H:%M %Z} by `bench/load.py`. "
        f"Machine: {m['cores']} cores, {m['arch']}, {m['cpu']}, {m['memory']}; "
        f"Python {m['python']}; {m['wrk']}.",
        "",
        f"Members: {opts.members:,}; server workers: {opts.workers}; "
        f"{opts.duration} s per scenario; wrk threads: {opts.wrk_threads}; "
        f"mixed = {', '.join(f'{w}% {k}' for k, w in MIX.items())} "
        "(write = PATCH of a member's occupation). "
        f"Settings: {', '.join(f'{k}={v}' for k, v in BENCH_ENV.items())}.",
    ]
    own = {*BENCH_ENV, *DROPPED_ENV, "SMARTUNION_DATA_DIR", "SMARTUNION_DATABASE_URL"}
    passed = sorted(k for k in os.environ if k.startswith("SMARTUNION_") and k not in own)
    if passed:
        out.append(f"Passed through from the environment: {', '.join(passed)}.")
    if note:
        out += ["", f"**{note}**"]
    for report in reports:
        out += ["", f"## {report.name}", ""]
        if report.skipped:
            out.append(f"Skipped: {report.skipped}.")
            continue
        setup = ", ".join(f"{k.removesuffix('_s')} {v:.1f} s" for k, v in report.setup.items())
        accounts = ", ".join(f"{v} {k}" for k, v in report.accounts.items())
        out.append(f"Database: {report.url}. Set-up: {setup}. Accounts: {accounts}.")
        if report.rss_start_mb is not None:
            out.append(f"Server RSS after start: {report.rss_start_mb:,.0f} MB.")
        if report.server_log:
            out.append(f"Server log: {report.server_log}.")
        for problem in report.problems:
            out.append(f"**Problem: {problem}.**")
        out += ["", *scenario_rows(report)]
        goals = goal_lines(report)
        if goals:
            out += ["", "Paced goal:", "", *goals]
        if report.slices:
            seconds = report.slice_seconds
            out += ["", f"### Soak: mixed workload, 100 connections, {seconds} s slices", ""]
            out += soak_rows(report, seconds)
            if report.soak_audit is not None:
                a = report.soak_audit
                out += [
                    "",
                    f"Soak audit: verify {a.verify_text} ({a.verify_seconds:.1f} s); "
                    f"events = audited 2xx: {a.events_text}.",
                ]
        fails = [o for o in report.outcomes if o.audit.verify_rc not in (0, None)]
        for o in fails:
            out.append(f"\n`audit verify` after {o.scenario.label}: {o.audit.verify_output}")
    out += ["", LITTLE.replace("{timeout}", str(opts.timeout))]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, default=HERE / "results" / "load.md")
    p.add_argument("--members", type=int, default=100_000)
    p.add_argument("--duration", type=int, default=20, help="seconds per scenario")
    p.add_argument("--soak-seconds", type=int, default=600, help="0 skips the soak")
    p.add_argument("--slice-seconds", type=int, default=30, help="soak slice length")
    p.add_argument("--backends", default="sqlite,postgresql")
    p.add_argument("--workers", type=int, default=1, help="server worker processes")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (same machine)")
    p.add_argument("--timeout", type=int, default=10, help="wrk's per-request timeout, s")
    p.add_argument("--logs", type=Path, help="keep each server's log in this folder")
    p.add_argument("--prepare", type=Path, help=argparse.SUPPRESS)  # child: accounts
    opts = p.parse_args(argv)
    unknown = set(opts.backends.split(",")) - {"sqlite", "postgresql"}
    if unknown:
        p.error(f"unknown backends: {', '.join(sorted(unknown))}")
    return opts


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    opts = parse_args(argv)
    if opts.prepare is not None:
        prepare_accounts(opts.prepare)
        return 0
    if shutil.which("wrk") is None:
        print("wrk is not installed (apt-get install wrk): load benchmark skipped", file=sys.stderr)
        return 0
    signal.signal(signal.SIGTERM, _terminate)  # so the servers and databases are cleaned up
    reports: list[BackendReport] = []
    note = ""
    try:
        for name in opts.backends.split(","):
            report = BackendReport(name)
            reports.append(report)
            try:
                run_backend(name, opts, report)
            except Exception as exc:  # reported, and the next backend still runs
                report.problems.append(
                    f"aborted: {type(exc).__name__}: {' '.join(str(exc).split())[:500]}"
                )
                print(f"[{name}] aborted: {type(exc).__name__}: {exc}", file=sys.stderr)
    except KeyboardInterrupt:
        note = "Interrupted: the figures below are partial."
        return 130
    finally:
        opts.out.parent.mkdir(parents=True, exist_ok=True)
        opts.out.write_text(render(reports, opts, note), encoding="utf-8")
        print(f"load report: {opts.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
