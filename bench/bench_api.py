"""API latency on a generated province: member-list page, name search, exact ID lookup.

Starts the real server (uvicorn, one worker) in a subprocess against the given database,
logs in as a province-level admin and times sequential requests over keep-alive.

    python bench/bench_api.py --url sqlite:///var/bench.db --data-dir var/bench --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from smartunion.db import Database
from smartunion.members.models import Member
from smartunion.members.service import ID_FIELD
from smartunion.orgs.models import UnionOrg
from smartunion.security import service as identity
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import load_keyring
from smartunion.security.models import User
from smartunion.security.permissions import Role

BENCH_USER = "bench_admin"
BENCH_PASSWORD = "Bench-Admin-2026!"  # noqa: S105 (throwaway account in a bench database)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def prepare(url: str, key_file: Path, samples: int) -> tuple[list[str], list[str], int]:
    """Bench account, a sample of real ID numbers (decrypted here) and name prefixes."""
    crypto = FieldCrypto(load_keyring(key_file, create=False))
    db = Database.from_url(url, audit_key=crypto.ring.audit_key)
    with db.session() as s:
        root = s.scalar(select(UnionOrg).where(UnionOrg.parent_id.is_(None)))
        if root is None:
            raise SystemExit("no organisations: generate a province first")
        if s.scalar(select(User.id).where(User.username == BENCH_USER)) is None:
            identity.create_user(
                s,
                None,
                username=BENCH_USER,
                password=BENCH_PASSWORD,
                role=Role.STAFF,  # province-wide scope; staff log in without TOTP
                org=root,
            )
        total = s.scalar(select(func.count(Member.id))) or 0
        rng = random.Random(7)
        max_id = s.scalar(select(func.max(Member.id))) or 0
        ids = [rng.randint(1, max_id) for _ in range(samples)]
        rows = s.execute(select(Member.name, Member.id_number_enc).where(Member.id.in_(ids))).all()
    db.engine.dispose()
    id_numbers = [crypto.decrypt(r.id_number_enc, ID_FIELD) for r in rows]
    # Full names and two-character prefixes: what staff type into the search box.
    names = [r.name if i % 2 else r.name[:2] for i, r in enumerate(rows)]
    return id_numbers, names, total


def run(url: str, data_dir: Path, requests: int) -> dict[str, Any]:
    key_file = data_dir / "secret.key"
    id_numbers, names, total = prepare(url, key_file, requests)
    port = free_port()
    env = {
        **os.environ,
        "SMARTUNION_DATABASE_URL": url,
        "SMARTUNION_DATA_DIR": str(data_dir),
        "SMARTUNION_API_RATE_LIMIT": "0",
        # The guard still counts every record (its cost is measured); a benchmark reads far
        # more than any person, so its limits are lifted here.
        "SMARTUNION_GUARD_MIN_NORMAL_DAILY": "100000000",
        "SMARTUNION_GUARD_HARD_MARGIN": "100000000",
        "SMARTUNION_DAILY_READ_QUOTA": "100000000",
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "smartunion", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        # A file, not a pipe: an unread pipe fills up and stalls the server.
        stderr=(data_dir / "bench-server.log").open("w"),
    )
    base = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, timeout=30) as client:
            for _ in range(200):
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            token = client.post(
                "/api/v1/auth/token", data={"username": BENCH_USER, "password": BENCH_PASSWORD}
            ).json()["access_token"]
            client.headers["Authorization"] = f"Bearer {token}"
            rng = random.Random(11)
            pages = max(1, min(total // 20, 500))
            cases = {
                "member list page": lambda i: client.get(
                    "/api/v1/members", params={"page": rng.randint(1, pages), "size": 20}
                ),
                "name search": lambda i: client.get(
                    "/api/v1/members", params={"q": names[i % len(names)], "size": 20}
                ),
                "exact ID-number lookup": lambda i: client.post(
                    "/api/v1/members/lookup", json={"id_number": id_numbers[i % len(id_numbers)]}
                ),
            }
            results: dict[str, Any] = {}
            for name, call in cases.items():
                for i in range(5):  # warm-up
                    call(i)
                times: list[float] = []
                for i in range(requests):
                    started = time.perf_counter()
                    response = call(i)
                    times.append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        raise SystemExit(f"{name}: HTTP {response.status_code} {response.text}")
                results[name] = {
                    "requests": requests,
                    "p50_ms": round(statistics.median(times), 1),
                    "p95_ms": round(percentile(times, 95), 1),
                    "p99_ms": round(percentile(times, 99), 1),
                    "max_ms": round(max(times), 1),
                }
            return {"members": total, "backend": url.split(":", 1)[0], "cases": results}
    finally:
        server.terminate()
        server.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    result = run(args.url, args.data_dir, args.requests)
    text = json.dumps(result, ensure_ascii=False, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
