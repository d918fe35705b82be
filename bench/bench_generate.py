"""Benchmark the synthetic province generator.

    python bench/bench_generate.py --members 1000000 [--url URL] [--json OUT]

Without ``--url`` it generates into a fresh SQLite file in a temporary directory
(removed afterwards). With a URL the database must be migrated already or empty: the
schema is upgraded first, and generation refuses a database that holds the province.
Reports wall seconds per phase, members per second and peak RSS (this process plus
the encryption helper), as a Markdown table and optionally as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from smartunion import schema
from smartunion.db import make_engine
from smartunion.generate import generate_province
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import KeyRing


def _peak_rss_mb() -> tuple[float, float]:
    # ru_maxrss is in KiB on Linux (bytes on macOS). RUSAGE_CHILDREN covers the
    # encryption helper once it has been reaped.
    scale = 1 / 1024 / 1024 if sys.platform == "darwin" else 1 / 1024
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * scale
    return own, children


def run(
    members: int, url: str | None, seed: int, province: str, workers: int | None
) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="su-bench-") as tmp:
        target = url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(target)
        schema.upgrade(engine)
        crypto = FieldCrypto(KeyRing.generate())
        started = time.perf_counter()
        report = generate_province(
            engine, crypto, members=members, seed=seed, province=province, workers=workers
        )
        wall = time.perf_counter() - started
        size = None
        if target.startswith("sqlite:///"):
            db = Path(target.removeprefix("sqlite:///"))
            size = sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())
        engine.dispose()
    own, children = _peak_rss_mb()
    return {
        "members": members,
        "backend": target.split(":", 1)[0].split("+", 1)[0],
        "province": province,
        "seed": seed,
        "workers": report.workers,
        "phases": {k: round(v, 3) for k, v in report.seconds.items()},
        "total_seconds": round(wall, 3),
        "members_per_second": round(members / wall),
        "peak_rss_mb": round(own, 1),
        "peak_rss_children_mb": round(children, 1),
        "peak_rss_total_mb": round(own + children, 1),
        "database_bytes": size,
        "counts": report.counts,
        "details": report.details,
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
    }


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"### generate_province: {result['members']:,} members on {result['backend']}",
        "",
        "| phase | seconds |",
        "| --- | ---: |",
    ]
    lines += [f"| {phase} | {seconds:.2f} |" for phase, seconds in result["phases"].items()]
    lines += [
        f"| **total (wall)** | **{result['total_seconds']:.2f}** |",
        "",
        "| measure | value |",
        "| --- | ---: |",
        f"| members/s | {result['members_per_second']:,} |",
        f"| peak RSS, main process | {result['peak_rss_mb']:,.0f} MB |",
        f"| peak RSS, encryption helper | {result['peak_rss_children_mb']:,.0f} MB |",
        f"| peak RSS, total | {result['peak_rss_total_mb']:,.0f} MB |",
        f"| helper processes | {result['workers']} |",
    ]
    if result["database_bytes"]:
        lines.append(f"| SQLite file + WAL | {result['database_bytes'] / 1e6:,.0f} MB |")
    lines.append(
        "| rows | " + ", ".join(f"{table} {n:,}" for table, n in result["counts"].items()) + " |"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=1_000_000)
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    parser.add_argument("--json", type=Path, help="also write the result as JSON here")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--province", default="140000")
    parser.add_argument(
        "--workers", type=int, default=None, help="encryption helper processes (default: auto)"
    )
    args = parser.parse_args(argv)
    result = run(args.members, args.url, args.seed, args.province, args.workers)
    print(markdown(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
