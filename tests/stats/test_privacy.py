"""Small-cell suppression and differential privacy of published counts."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from smartunion.db import Database
from smartunion.orgs.models import OrgKind, OrgLevel
from smartunion.security.crypto import FieldCrypto
from smartunion.stats.privacy import laplace_counts, suppress
from tests.factories import World, bulk_members, make_org

counts_strategy = st.dictionaries(
    st.text(min_size=1, max_size=4), st.integers(min_value=0, max_value=60), max_size=12
)


@given(counts_strategy, st.integers(min_value=2, max_value=20))
def test_no_small_cell_and_no_recoverable_hidden_sum(counts: dict[str, int], k: int) -> None:
    out = suppress(counts, k)
    assert set(out) == set(counts)
    published = {key: n for key, n in out.items() if n is not None}
    hidden = [key for key, n in out.items() if n is None]
    assert all(n == 0 or n >= k for n in published.values())
    assert all(published[key] == counts[key] for key in published)
    if hidden:
        # Two or more hidden cells whose sum is at least k, unless nothing else was left.
        nonzero_left = [key for key, n in published.items() if n > 0]
        assert (len(hidden) >= 2 and sum(counts[h] for h in hidden) >= k) or not nonzero_left


def test_single_small_cell_takes_a_partner() -> None:
    out = suppress({"a": 120, "b": 3, "c": 40, "d": 0}, 10)
    assert out == {"a": 120, "b": None, "c": None, "d": 0}


def test_laplace_noise_is_unbiased_and_scaled() -> None:
    rng = np.random.default_rng(1)
    draws = np.array([laplace_counts({"x": 1000}, 0.5, rng)["x"] for _ in range(4000)], dtype=float)
    assert abs(draws.mean() - 1000) < 0.5
    # Laplace(b = 1/ε = 2): standard deviation b·√2 ≈ 2.83 (rounding adds a little).
    assert 2.5 < draws.std() < 3.2


@pytest.fixture
def province(db: Database, crypto: FieldCrypto, world: World) -> World:
    with db.session() as s:
        bulk_members(s, crypto, world.union_a, world.ent_a, 40, "工人")
        bulk_members(s, crypto, world.union_b, world.ent_b, 7, "职工")
        city_c = make_org(s, "阳泉市总工会", OrgLevel.CITY, "140300", world.province)
        union_c = make_org(
            s,
            "阳泉化工有限公司工会委员会",
            OrgLevel.GRASSROOTS,
            "140302",
            city_c,
            OrgKind.ENTERPRISE,
        )
        bulk_members(s, crypto, union_c, None, 30, "员工")
    return world


class TestMemberStatistics:
    def test_counts_by_org_with_small_branch_suppressed(
        self, client: TestClient, province: World
    ) -> None:
        r = client.get(
            "/api/v1/stats/members", params={"by": "org"}, headers=province.auth("analyst")
        )
        assert r.status_code == 200
        body = r.json()
        cells = {c["label"]: c for c in body["cells"]}
        assert cells["太原市总工会"]["count"] == 41
        assert cells["大同市总工会"]["suppressed"] is True  # 8 < k
        assert cells["大同市总工会"]["count"] is None
        # With the total published, 8 alone would be 79 - 41 - 30: its partner hides too.
        assert cells["阳泉市总工会"]["suppressed"] is True
        assert body["total"] == 79

    def test_by_age_band_and_employment_form(self, client: TestClient, province: World) -> None:
        for by in ("age_band", "employment_form", "industry", "gender"):
            r = client.get(
                "/api/v1/stats/members", params={"by": by}, headers=province.auth("analyst")
            )
            assert r.status_code == 200, by
            published = [c["count"] for c in r.json()["cells"] if c["count"] is not None]
            assert all(n == 0 or n >= 10 for n in published)

    def test_scope_applies(self, client: TestClient, province: World) -> None:
        r = client.get(
            "/api/v1/stats/members",
            params={"org_id": province.union_a.id},
            headers=province.auth("staff_b"),
        )
        assert r.status_code == 404
        r = client.get("/api/v1/stats/members", headers=province.auth("member_a"))
        assert r.status_code == 403

    def test_dp_budget_is_spent_and_enforced(self, client: TestClient, province: World) -> None:
        headers = province.auth("analyst")
        params = {"by": "employment_form", "epsilon": 1.0}
        assert (
            client.get("/api/v1/stats/members", params=params, headers=headers).status_code == 200
        )
        assert (
            client.get("/api/v1/stats/members", params=params, headers=headers).status_code == 200
        )
        third = client.get("/api/v1/stats/members", params=params, headers=headers)
        assert third.status_code == 429
        assert "budget" in third.json()["detail"]
