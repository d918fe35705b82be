"""`make bench`: the province-scale figures, written to bench/results/latest.md.

1. Generate a province of N members (default 1,000,000) on SQLite and, when it answers,
   PostgreSQL: wall time and peak memory of the `smartunion generate` process tree.
2. API latency on each: member-list page, name search, exact ID-number lookup (p50/p95).
3. Overhead of auditing (and guarding) a member read, measured in-process.
4. Key rotation of every encrypted field on the SQLite province.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, select, text

sys.path.insert(0, str(Path(__file__).parent))
import bench_api

PG_ADMIN = os.environ.get(
    "SMARTUNION_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)


def smartunion(data_dir: Path, url: str, *args: str) -> tuple[float, float, str]:
    """Run the CLI in a child; (seconds, peak RSS MB of the tree's largest process, output)."""
    env = {**os.environ, "SMARTUNION_DATA_DIR": str(data_dir), "SMARTUNION_DATABASE_URL": url}
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "smartunion", *args], env=env, capture_output=True, text=True
    )
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"smartunion {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    peak = max(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, before) / 1024
    return seconds, peak, done.stdout


def postgres_url() -> str | None:
    try:
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS su_bench WITH (FORCE)"))
            conn.execute(text("CREATE DATABASE su_bench"))
        admin.dispose()
    except Exception as exc:  # absent or refused: the report says so
        print(f"PostgreSQL skipped: {type(exc).__name__}", file=sys.stderr)
        return None
    return PG_ADMIN.rsplit("/", 1)[0] + "/su_bench"


def audit_overhead(url: str, data_dir: Path, reads: int = 400) -> dict[str, float]:
    """Mean ms per member detail read, with and without the audit event and guard charge."""
    from smartunion.db import Database
    from smartunion.members import service
    from smartunion.members.models import Member
    from smartunion.security import audit, guard
    from smartunion.security import service as identity
    from smartunion.security.crypto import FieldCrypto
    from smartunion.security.guard import GuardPolicy

    crypto = FieldCrypto.from_file(data_dir / "secret.key")
    db = Database.from_url(
        url,
        audit_key=crypto.ring.audit_key,
        guard_policy=GuardPolicy(min_normal_daily=10**7, hard_margin=10**8, daily_read_quota=10**8),
    )
    with db.session() as s:
        principal = identity.principal_for(s, bench_api.BENCH_USER)
        top = s.scalar(select(Member.id).order_by(Member.id.desc())) or 1
    ids = [1 + (i * 7919) % top for i in range(reads)]

    def timed() -> float:
        started = time.perf_counter()
        for member_id in ids:
            with db.session() as s:
                service.get_member(s, principal, crypto, member_id)
        return (time.perf_counter() - started) * 1000 / reads

    with_audit = timed()
    real_record, real_charge = audit.record, guard.charge
    audit.record = lambda *a, **k: None  # type: ignore[assignment]
    guard.charge = lambda *a, **k: None  # type: ignore[assignment]
    try:
        without = timed()
    finally:
        audit.record, guard.charge = real_record, real_charge
    db.engine.dispose()
    return {
        "with_ms": round(with_audit, 2),
        "without_ms": round(without, 2),
        "overhead_ms": round(with_audit - without, 2),
    }


def province(name: str, url: str, data_dir: Path, members: int, requests: int) -> dict[str, Any]:
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    smartunion(data_dir, url, "init")
    seconds, peak, out = smartunion(
        data_dir, url, "generate", "--members", str(members), "--seed", "1"
    )
    print(f"[{name}] generated {members:,} members in {seconds:.1f} s, peak {peak:.0f} MB")
    api = bench_api.run(url, data_dir, requests)
    print(f"[{name}] API: {json.dumps(api['cases'])}")
    overhead = audit_overhead(url, data_dir)
    print(f"[{name}] audit overhead: {overhead}")
    return {
        "backend": name,
        "generate_s": round(seconds, 1),
        "peak_mb": round(peak),
        "generate_output": out.strip(),
        "api": api["cases"],
        "audit": overhead,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("bench/results/latest.md"))
    parser.add_argument("--work", type=Path, default=Path("var/bench"))
    args = parser.parse_args()
    results = [
        province(
            "SQLite",
            f"sqlite:///{(args.work / 'sqlite' / 'bench.db').resolve()}",
            args.work / "sqlite",
            args.members,
            args.requests,
        )
    ]
    pg = postgres_url()
    if pg:
        results.append(province("PostgreSQL", pg, args.work / "pg", args.members, args.requests))
    sqlite_dir = args.work / "sqlite"
    sqlite_url = f"sqlite:///{(sqlite_dir / 'bench.db').resolve()}"
    rot_s, rot_peak, rot_out = smartunion(sqlite_dir, sqlite_url, "keys", "rotate")
    print(f"[SQLite] key rotation: {rot_out.strip()}")
    write_report(args, results, pg is not None, rot_s, rot_peak, rot_out)
    (args.out.with_suffix(".json")).write_text(
        json.dumps({"results": results, "rotation_s": rot_s}, ensure_ascii=False, indent=2),
        encoding="utf-8",
    )


def write_report(
    args: argparse.Namespace,
    results: list[dict[str, Any]],
    pg: bool,
    rot_s: float,
    rot_peak: float,
    rot_out: str,
) -> None:
    lines = [
        f"# SmartUnion benchmarks — {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.machine()}. Province: Shanxi (140000), seed 1, {args.members:,} members.",
        "" if pg else "PostgreSQL was not reachable: its rows are missing.",
        "",
        "## Generation (target ≤ 60 s and ≤ 4 GB for 1M members)",
        "",
        "| backend | wall s | members/s | peak RSS MB (largest process) |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        lines.append(
            f"| {r['backend']} | {r['generate_s']} | {args.members / r['generate_s']:,.0f} | "
            f"{r['peak_mb']} |"
        )
    lines += [
        "",
        "## API latency, sequential over keep-alive (goal p95 ≤ 200 ms)",
        "",
        "| backend | case | requests | p50 ms | p95 ms | p99 ms | max ms |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        for case, m in r["api"].items():
            lines.append(
                f"| {r['backend']} | {case} | {m['requests']} | {m['p50_ms']} | {m['p95_ms']} | "
                f"{m['p99_ms']} | {m['max_ms']} |"
            )
    lines += [
        "",
        "## Audit and guard overhead on one member detail read (in-process)",
        "",
        "| backend | with ms | without ms | overhead ms |",
        "| --- | --- | --- | --- |",
    ]
    for r in results:
        a = r["audit"]
        lines.append(
            f"| {r['backend']} | {a['with_ms']} | {a['without_ms']} | {a['overhead_ms']} |"
        )
    rate = re.search(r"\(([\d,]+)/s\)", rot_out)
    lines += [
        "",
        "## Key rotation (SQLite, every encrypted field of the province)",
        "",
        f"{rot_s:.1f} s wall including a 3 s settle pause, peak {rot_peak:.0f} MB; "
        f"{rate.group(1) if rate else '?'} values re-encrypted per second.",
        "",
        "## Generator phases",
        "",
    ]
    for r in results:
        lines += [f"### {r['backend']}", "", "```", r["generate_output"], "```", ""]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
