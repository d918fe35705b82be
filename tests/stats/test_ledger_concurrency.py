"""The ε ledger under parallel requests: the monthly budget holds however many ask at once."""

from __future__ import annotations

import concurrent.futures as cf
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.live import live_server


@pytest.mark.parametrize("backend", BACKENDS)
def test_parallel_releases_cannot_pass_the_budget_together(backend: str, tmp_path: Path) -> None:
    with live_server(backend, tmp_path) as live:
        w = live.world
        url = f"{live.url}/api/v1/stats/members"
        # From two levels at once: the province's analyst and the city's own staff.
        callers = ["analyst", "staff_a"] * 8

        def release(who: str) -> int:
            params = {"by": "gender", "org_id": w.city_a.id, "epsilon": 0.5}
            return httpx.get(url, params=params, headers=w.auth(who), timeout=60).status_code

        with cf.ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(release, callers))
        # Budget 2.0 at ε 0.5 each: exactly four releases, whoever asked.
        assert codes.count(200) == 4, codes
        assert codes.count(429) == len(callers) - 4, codes
