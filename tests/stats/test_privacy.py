"""Small-cell suppression and differential privacy of published counts."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from smartunion.config import Settings
from smartunion.db import Database
from smartunion.members.models import EmploymentForm, Gender, Member
from smartunion.orgs.models import OrgKind, OrgLevel, UnionOrg
from smartunion.security.crypto import FieldCrypto
from smartunion.stats.models import PrivacyRelease
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


def _stats(client: TestClient, who: str, world: World, **params: object) -> dict[str, Any]:
    r = client.get("/api/v1/stats/members", params=params, headers=world.auth(who))
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _set_genders(s: Session, org: UnionOrg, females: int) -> None:
    """The first ``females`` members of ``org`` become women, the others men."""
    ids = list(s.scalars(select(Member.id).where(Member.org_id == org.id).order_by(Member.id)))
    for i, member_id in enumerate(ids):
        s.execute(
            update(Member)
            .where(Member.id == member_id)
            .values(gender=Gender.FEMALE if i < females else Gender.MALE)
        )
    s.flush()


class TestDifferencing:
    """Attacks that subtract one published number from another (issue 7, item 8)."""

    def test_parent_total_minus_children_does_not_give_a_small_branch(
        self, client: TestClient, province: World
    ) -> None:
        w = province
        top = _stats(client, "analyst", w, by="org")
        cells = {int(c["key"]): c["count"] for c in top["cells"]}
        # The attacker fills in every hidden child from its own table (its total).
        known = {}
        for key, count in cells.items():
            if count is None and key != w.province.id:
                known[key] = _stats(client, "analyst", w, by="org", org_id=key)["total"]
            else:
                known[key] = count
        unknown = [key for key, n in known.items() if n is None]
        # 大同 (8 members) stays hidden, and not alone: the difference gives no single count.
        assert w.city_b.id in unknown
        assert len(unknown) >= 2
        assert top["total"] - sum(n for n in known.values() if n is not None) >= 10

    def test_other_dimension_minus_published_children_does_not_give_a_small_cell(
        self, client: TestClient, db: Database, crypto: FieldCrypto, world: World
    ) -> None:
        # A county with two unions: U1 has 3 women among 43, U2 20 among 50, no own members.
        with db.session() as s:
            county = make_org(s, "小店区总工会", OrgLevel.COUNTY, "140105", world.city_b)
            u1 = make_org(
                s, "甲公司工会", OrgLevel.GRASSROOTS, "140106", county, OrgKind.ENTERPRISE
            )
            u2 = make_org(
                s, "乙公司工会", OrgLevel.GRASSROOTS, "140107", county, OrgKind.ENTERPRISE
            )
            bulk_members(s, crypto, u1, None, 43, "甲")
            bulk_members(s, crypto, u2, None, 50, "乙")
            _set_genders(s, u1, 3)
            _set_genders(s, u2, 20)
        views = {
            org.id: _stats(client, "analyst", world, by="gender", org_id=org.id)
            for org in (county, u1, u2)
        }

        def cell(org: UnionOrg, key: str) -> int | None:
            return next(c["count"] for c in views[org.id]["cells"] if c["key"] == key)

        assert cell(u1, "F") is None  # 3 < k
        # county F − U2 F would be U1's 3 women: one of the two must stay hidden.
        assert cell(county, "F") is None or cell(u2, "F") is None
        # Nor is U1's hidden cell its table's total minus the other cell.
        assert views[u1.id]["total"] is None or cell(u1, "M") is None

    def test_small_union_table_lists_every_category_and_tells_nothing(
        self, client: TestClient, province: World
    ) -> None:
        # 大同机械 has 8 members, every one of them in standard employment.
        for by, every in (
            ("employment_form", {f.value for f in EmploymentForm}),
            ("gender", {g.value for g in Gender}),
        ):
            body = _stats(client, "analyst", province, by=by, org_id=province.union_b.id)
            assert {c["key"] for c in body["cells"]} == every, by
            assert all(c["count"] is None for c in body["cells"]), by
            assert body["total"] is None

    def test_large_union_lists_zero_categories(self, client: TestClient, province: World) -> None:
        body = _stats(client, "analyst", province, by="employment_form", org_id=province.city_a.id)
        counts = {c["key"]: c["count"] for c in body["cells"]}
        assert set(counts) == {f.value for f in EmploymentForm}
        assert counts["standard"] == 41
        assert counts["courier"] == 0
        assert body["mode"] == "k"


class TestBudgetOfTheCounted:
    """The ε ledger charges the organisation whose members are counted (item 9)."""

    def test_levels_above_share_one_budget(self, client: TestClient, province: World) -> None:
        w = province
        dp = {"by": "gender", "epsilon": 1.0}
        # The province's analyst spends the month's 2.0 on 太原's members …
        for _ in range(2):
            body = _stats(client, "analyst", w, org_id=w.city_a.id, **dp)
            assert body["mode"] == "dp"
        # … so 太原's own staff cannot bring a budget of their own for the same people,
        r = client.get(
            "/api/v1/stats/members", params={**dp, "org_id": w.city_a.id}, headers=w.auth("staff_a")
        )
        assert r.status_code == 429, r.text
        # nor can anyone release a table above them or below them that counts them again;
        for org in (w.province, w.union_a):
            r = client.get(
                "/api/v1/stats/members",
                params={**dp, "epsilon": 0.1, "org_id": org.id},
                headers=w.auth("analyst"),
            )
            assert r.status_code == 429, (org.name, r.text)
        # members elsewhere are untouched.
        assert _stats(client, "analyst", w, org_id=w.city_b.id, **dp)["mode"] == "dp"

    def test_ledger_entry_names_the_counted_organisation(
        self, client: TestClient, province: World, db: Database
    ) -> None:
        _stats(client, "analyst", province, by="gender", epsilon=0.5, org_id=province.city_a.id)
        with db.session() as s:
            release = s.scalars(select(PrivacyRelease)).one()
            assert release.org_id == province.city_a.id


class TestModes:
    def test_leaving_out_epsilon_is_refused_for_dp_only_roles(
        self, client: TestClient, province: World, settings: Settings
    ) -> None:
        settings.stats_dp_only_roles = "analyst"
        r = client.get("/api/v1/stats/members", headers=province.auth("analyst"))
        assert r.status_code == 422
        assert "epsilon" in r.text
        r = client.get(
            "/api/v1/stats/members", params={"mode": "k"}, headers=province.auth("analyst")
        )
        assert r.status_code == 422
        body = _stats(client, "analyst", province, epsilon=0.5)
        assert body["mode"] == "dp"
        # Other roles keep the exact mode, and say so.
        assert _stats(client, "staff_a", province)["mode"] == "k"

    @pytest.mark.parametrize(
        ("params", "status"),
        [({"mode": "dp"}, 422), ({"mode": "k", "epsilon": 1.0}, 422), ({"mode": "x"}, 422)],
    )
    def test_inconsistent_mode_and_epsilon(
        self, client: TestClient, province: World, params: dict[str, object], status: int
    ) -> None:
        r = client.get("/api/v1/stats/members", params=params, headers=province.auth("analyst"))
        assert r.status_code == status
