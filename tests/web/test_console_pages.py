"""Console and portal page behaviour added for a real day's work (issue 9, items 10–14).

Runs on SQLite and PostgreSQL like tests/web/test_pages.py; logged-in cases reuse the
ready cookie sessions of ``world``.
"""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from smartunion.db import Database
from smartunion.security.crypto import FieldCrypto
from smartunion.security.guard import GuardPolicy
from tests.factories import World


def login_as(client: TestClient, world: World, who: str) -> None:
    client.cookies.set("su_session", world.cookies[who])


class TestUnknownAddresses:
    """Item 10: a styled Chinese 404 page under /console and /m/; the API keeps JSON."""

    @pytest.mark.parametrize("path", ["/console/nope", "/console/members/1/nope", "/console/a/b/c"])
    def test_console_answers_a_styled_page(
        self, client: TestClient, world: World, path: str
    ) -> None:
        login_as(client, world, "staff_a")
        r = client.get(path)
        assert r.status_code == 404
        assert "text/html" in r.headers["content-type"]
        assert "页面不存在" in r.text
        assert 'class="sidenav' in r.text  # in the console's own look, navigation included
        assert r.headers["cache-control"] == "no-store"

    def test_console_page_without_a_session_still_says_so(self, client: TestClient) -> None:
        r = client.get("/console/nope")
        assert r.status_code == 404
        assert "页面不存在" in r.text
        assert 'class="sidenav' not in r.text  # nobody is logged in: no navigation

    def test_post_to_an_unknown_console_address(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.post("/console/nope", data={"x": "1"})
        assert r.status_code == 404
        assert "页面不存在" in r.text

    def test_portal_answers_a_styled_page(self, client: TestClient, world: World) -> None:
        login_as(client, world, "member_a")
        r = client.get("/m/nope")
        assert r.status_code == 404
        assert "页面不存在" in r.text
        assert 'href="/m/"' in r.text  # the way back is the portal, not the console

    def test_english_when_chosen(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        client.cookies.set("lang", "en")
        r = client.get("/console/nope")
        assert r.status_code == 404
        assert "Page not found" in r.text

    def test_known_pages_are_untouched(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        assert client.get("/console/members").status_code == 200
        r = client.get("/console/", follow_redirects=False)
        assert r.status_code in (307, 308)
        assert r.headers["location"].endswith("/console")
        # A record that does not exist keeps its own message.
        r = client.get("/console/members/999999")
        assert r.status_code == 404
        assert "记录不存在" in r.text

    @pytest.mark.parametrize("path", ["/api/v1/nope", "/api/v1/members/1/nope"])
    def test_the_api_keeps_json(self, client: TestClient, world: World, path: str) -> None:
        r = client.get(path, headers=world.auth("staff_a"))
        assert r.status_code == 404
        assert r.json() == {"detail": "Not Found"}


# ---------------------------------------------------------------------------------------
# Item 11: the audit page and the alert cards in words


def _recorded_actions_and_types() -> tuple[set[str], set[str], list[str]]:
    """Every action and object type the source hands to ``audit.record`` as a literal.

    A conditional (``"a" if x else "b"``) gives both; an f-string is kept as a pattern.
    """
    import ast
    from pathlib import Path

    import smartunion

    actions: set[str] = set()
    types: set[str] = set()
    patterns: list[str] = []

    def literals(node: ast.expr) -> list[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.IfExp):
            return literals(node.body) + literals(node.orelse)
        if isinstance(node, ast.JoinedStr):
            patterns.append(ast.unparse(node))
        return []

    for path in Path(smartunion.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name != "record" or len(node.args) < 3:
                continue
            actions.update(literals(node.args[2]))
            for kw in node.keywords:
                if kw.arg == "object_type":
                    types.update(literals(kw.value))
    return actions, types, patterns


class TestAuditVocabulary:
    def test_every_recorded_action_and_object_type_is_named_in_both_languages(self) -> None:
        from smartunion import i18n
        from smartunion.web.console.audit import LABELLED_ACTIONS, OBJECT_TYPES

        actions, types, patterns = _recorded_actions_and_types()
        assert {"privacy.requests_view", "keys.rotate.start", "keys.rotate.done"} <= actions
        assert actions - set(LABELLED_ACTIONS) == set()
        assert types - set(OBJECT_TYPES) == set()
        # The one f-string action: privacy.{kind}_request, kinds from the portal form.
        assert patterns == ["f'privacy.{kind}_request'"]
        for lang in ("zh-CN", "en"):
            texts = i18n.catalog(lang)
            missing = [a for a in LABELLED_ACTIONS if f"audit.action.{a}" not in texts]
            missing += [o for o in OBJECT_TYPES if f"audit.object.{o}" not in texts]
            assert missing == [], lang

    def test_details_read_as_text(self) -> None:
        from smartunion import i18n
        from smartunion.web.console.audit import detail_items

        t = i18n.translator("zh-CN")
        items = detail_items(
            t,
            "user.role_change",
            {"from": "staff", "to": "org_admin", "fields": ["id_number", "phone"], "x": True},
        )
        assert ("原角色", "工作人员") in items
        assert ("新角色", "组织管理员") in items
        assert ("字段", "公民身份号码、手机号码") in items
        assert ("x", "是") in items
        assert detail_items(t, "member.list", {}) == []


class TestAuditPage:
    def test_action_filter_is_a_list_of_named_actions(
        self, client: TestClient, world: World
    ) -> None:
        login_as(client, world, "auditor")
        r = client.get("/console/audit", params={"action": "keys.rotate.done"})
        assert r.status_code == 200
        assert '<select name="action"' in r.text
        assert '<option value="keys.rotate.done" selected>' in r.text
        assert '<option value="member.">' in r.text  # a whole group at once
        assert "完成密钥轮换" in r.text
        assert '<select name="object_type"' in r.text

    def test_guard_suspension_is_shown_as_done_by_the_guard(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        db.sessionmaker.kw["info"]["guard_policy"] = GuardPolicy(min_normal_daily=0, hard_margin=0)
        login_as(client, world, "staff_a")
        assert client.get("/console/members").status_code == 403
        db.sessionmaker.kw["info"]["guard_policy"] = GuardPolicy()
        login_as(client, world, "auditor")
        r = client.get("/console/audit", params={"action": "security.suspend"})
        assert r.status_code == 200
        row = re.search(r"<tr>\s*<td class=\"num mono\">.*?</tr>", r.text, re.S)
        assert row is not None
        cells = re.findall(r"<td[^>]*>(.*?)</td>", row.group(0), re.S)
        actor, obj = cells[2], cells[5]
        assert "内部访问监测" in actor
        assert "staff_a" not in actor
        assert "staff_a" in obj
        assert "账号" in obj
        # Details as words, not JSON.
        assert "{&#34;" not in row.group(0)
        assert '{"' not in row.group(0)
        assert "原因" in row.group(0)

    def test_alert_cards_say_what_happened(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        db.sessionmaker.kw["info"]["guard_policy"] = GuardPolicy(min_normal_daily=0, hard_margin=0)
        login_as(client, world, "staff_a")
        assert client.get("/console/members").status_code == 403
        db.sessionmaker.kw["info"]["guard_policy"] = GuardPolicy()
        login_as(client, world, "officer")
        r = client.get("/console/security/alerts")
        assert r.status_code == 200
        assert '"today"' not in r.text
        assert "&#34;today&#34;" not in r.text
        assert re.search(r"今日读取会员记录远超其正常量：超出 \d+（加权条数）", r.text)
        client.cookies.set("lang", "en")
        r = client.get("/console/security/alerts")
        assert re.search(r"far past their normal: \d+ \(weighted records\) over", r.text)


class TestOwnCard:
    """Item 14: a member sees their own name whole; staff and others still see it masked."""

    def test_api_me_has_the_own_name_whole(self, client: TestClient, world: World) -> None:
        r = client.get("/api/v1/me/profile", headers=world.auth("member_a"))
        assert r.status_code == 200
        body = r.json()
        assert body["name"] == "张三丰"
        assert body["id_number"] != world.id_a
        assert "*" in body["id_number"]

    def test_staff_still_see_the_name_masked(self, client: TestClient, world: World) -> None:
        r = client.get(f"/api/v1/members/{world.member_a.id}", headers=world.auth("staff_a"))
        assert r.json()["name"] == "张*丰"
        login_as(client, world, "staff_a")
        page = client.get(f"/console/members/{world.member_a.id}").text
        assert "张三丰" not in page


class TestMyDataPage:
    """Item 12: the member's data download as a readable, printable page beside the JSON."""

    def _csrf(self, client: TestClient) -> str:
        r = client.get("/m/privacy")
        assert r.status_code == 200
        match = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        assert match
        return match.group(1)

    def test_readable_page_in_chinese(self, client: TestClient, world: World, db: Database) -> None:
        login_as(client, world, "member_a")
        client.get("/m/")  # a read of their record, to appear in the access log
        token = self._csrf(client)
        r = client.post("/m/privacy/data", data={"view": "page", "csrf_token": token})
        assert r.status_code == 200
        assert "text/html" in r.headers["content-type"]
        assert r.headers["cache-control"] == "no-store"
        text = r.text
        assert "我的个人信息" in text
        assert "公民身份号码" in text
        assert world.id_a in text  # theirs, in full
        assert world.phone_a in text
        assert "张三丰" in text
        assert "<dd>男</dd>" in text  # a label, not the code "M"
        assert "查看会员详情" in text  # the access log in words
        assert "member.read" not in text
        assert "会员</td>" in text  # by role, not by name
        assert "data-print" in text
        with db.session() as s:
            from sqlalchemy import select

            from smartunion.security.models import AuditEvent

            events = s.scalars(
                select(AuditEvent).where(AuditEvent.action == "member.self_export")
            ).all()
            assert len(events) == 1

    def test_json_stays_as_it_was(self, client: TestClient, world: World) -> None:
        login_as(client, world, "member_a")
        token = self._csrf(client)
        for data in ({"csrf_token": token}, {"view": "json", "csrf_token": token}):
            r = client.post("/m/privacy/data", data=data)
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("application/json")
            assert r.json()["profile"]["id_number"] == world.id_a

    def test_needs_the_csrf_token(self, client: TestClient, world: World) -> None:
        login_as(client, world, "member_a")
        self._csrf(client)
        r = client.post("/m/privacy/data", data={"view": "page"})
        assert r.status_code == 403
        assert world.id_a not in r.text

    def test_english(self, client: TestClient, world: World) -> None:
        login_as(client, world, "member_a")
        client.cookies.set("lang", "en")
        token = self._csrf(client)
        r = client.post("/m/privacy/data", data={"view": "page", "csrf_token": token})
        assert "My personal data" in r.text
        assert "Citizen ID number" in r.text or "ID number" in r.text


# ---------------------------------------------------------------------------------------
# Item 9: the member list


class TestMemberListTools:
    def test_totals_have_thousands_separators_and_a_page_jump(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        from tests.factories import bulk_members

        with db.session() as s:
            bulk_members(s, crypto, world.union_a, world.ent_a, 1_030, "批")
        login_as(client, world, "staff_a")
        r = client.get("/console/members", params={"employment_form": "standard"})
        assert r.status_code == 200
        assert re.search(r"共 1,0\d\d 条", r.text)
        assert 'class="pager-jump"' in r.text
        # The jump form keeps the filters and the page size.
        jump = r.text[r.text.index('class="pager-jump"') :]
        jump = jump[: jump.index("</form>")]
        assert 'name="employment_form" value="standard"' in jump
        assert 'name="size" value="20"' in jump
        assert 'name="page"' in jump
        r = client.get("/console/members", params={"employment_form": "standard", "page": "50"})
        assert 'aria-current="page">50<' in r.text

    def test_thousands_filter(self) -> None:
        from smartunion.web.pagekit import thousands

        assert thousands(1234567) == "1,234,567"
        assert thousands(999) == "999"
        assert thousands(None) == "—"


class TestMemberListFilters:
    """Item 9: organisation, enterprise, gender, age band and industry filters, sorting."""

    def _add_wang(self, db: Database, crypto: FieldCrypto, world: World) -> None:
        import datetime as dt

        from tests.factories import citizen_id, make_enterprise, make_member

        with db.session() as s:
            ent_c = make_enterprise(s, world.union_a, "太原机械厂", division="34")
            wang = make_member(
                s, crypto, world.union_a, ent_c, "王五", citizen_id("140105", "20000601", 246)
            )
            wang.join_date = dt.date(2024, 1, 1)

    def _names(self, client: TestClient, **params: str) -> list[str]:
        r = client.get("/console/members", params=params)
        assert r.status_code == 200
        return [n for n in ("张*丰", "王*") if n in r.text]

    def test_each_filter_narrows_the_list(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        self._add_wang(db, crypto, world)
        login_as(client, world, "staff_a")
        assert self._names(client) == ["张*丰", "王*"]
        assert self._names(client, gender="F") == ["王*"]
        assert self._names(client, gender="M") == ["张*丰"]
        assert self._names(client, age_band="36-45") == ["张*丰"]
        assert self._names(client, age_band="26-35") == ["王*"]
        assert self._names(client, age_band="56+") == []
        assert self._names(client, industry="B") == ["张*丰"]  # a section: 06 coal mining
        assert self._names(client, industry="34") == ["王*"]  # a division
        assert self._names(client, industry="C") == ["王*"]
        assert self._names(client, org_id=str(world.union_a.id)) == ["张*丰", "王*"]
        assert self._names(client, enterprise_id=str(world.ent_a.id)) == ["张*丰"]
        # Junk is "no filter", as for the other filters.
        assert self._names(client, age_band="x", industry="ZZ", gender="?") == ["张*丰", "王*"]

    def test_sorting(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        self._add_wang(db, crypto, world)
        login_as(client, world, "staff_a")

        def order(sort: str) -> list[str]:
            text = client.get("/console/members", params={"sort": sort}).text
            return sorted(("张*丰", "王*"), key=text.index)

        assert order("join_desc") == ["王*", "张*丰"]
        assert order("join_asc") == ["张*丰", "王*"]
        assert order("name") == ["张*丰", "王*"]  # 张 U+5F20 sorts before 王 U+738B
        r = client.get("/console/members", params={"sort": "join_desc"})
        assert '<option value="join_desc" selected>' in r.text

    def test_the_lists_offer_choices(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/console/members")
        assert '<select name="org_id">' in r.text
        assert world.union_a.name in r.text
        assert '<select name="enterprise_id">' not in r.text  # only once a union is chosen
        assert '<option value="06">06 煤炭开采和洗选业</option>' in r.text
        r = client.get("/console/members", params={"org_id": str(world.union_a.id)})
        assert '<select name="enterprise_id">' in r.text
        assert f'<option value="{world.ent_a.id}">{world.ent_a.name}</option>' in r.text

    def test_the_list_is_audited_with_its_filters(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        from sqlalchemy import select

        from smartunion.security.models import AuditEvent

        login_as(client, world, "staff_a")
        client.get("/console/members", params={"gender": "M", "age_band": "36-45", "industry": "B"})
        with db.session() as s:
            event = s.scalars(select(AuditEvent).where(AuditEvent.action == "member.list")).all()[
                -1
            ]
        assert event.details["filters"] == {"gender": "M", "age_band": "36-45", "industry": "B"}

    def test_an_export_carries_the_new_filters(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        from sqlalchemy import select

        from smartunion.security.models import ExportRequest

        login_as(client, world, "staff_a")
        r = client.get("/console/members", params={"gender": "M", "industry": "B"})
        token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        assert token
        assert '<input type="hidden" name="gender" value="M">' in r.text
        r = client.post(
            "/console/exports",
            data={
                "org_id": str(world.union_a.id),
                "gender": "M",
                "age_band": "36-45",
                "industry": "B",
                "format": "csv",
                "csrf_token": token.group(1),
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        with db.session() as s:
            request = s.scalars(select(ExportRequest).order_by(ExportRequest.id.desc())).first()
        assert request is not None
        assert request.filters == {"gender": "M", "age_band": "36-45", "industry": "B"}
        assert request.record_count == 1


def test_birth_range_of_an_age_band() -> None:
    import datetime as dt

    from smartunion.errors import InvalidInput
    from smartunion.members import service

    today = dt.date(2026, 12, 1)
    assert service.birth_range("26-35", today) == (dt.date(1990, 12, 1), dt.date(2000, 12, 1))
    assert service.birth_range("56+", today) == (None, dt.date(1970, 12, 1))
    assert service.birth_range("26-35", dt.date(2028, 2, 29))[1] == dt.date(2002, 2, 28)
    with pytest.raises(InvalidInput):
        service.narrowing(age_band="99-100")
    with pytest.raises(InvalidInput):
        service.narrowing(industry="ZZ")


class TestEnterpriseMembership:
    """Item 9: enterprise pages show the member count and the membership rate (入会率)."""

    def test_detail_and_list_show_count_and_rate(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        from tests.factories import bulk_members

        with db.session() as s:
            bulk_members(s, crypto, world.union_a, world.ent_a, 249, "员")  # 250 with 张三丰
        login_as(client, world, "staff_a")
        r = client.get(f"/console/enterprises/{world.ent_a.id}")
        assert r.status_code == 200
        assert "入会率" in r.text
        assert "<dd>250</dd>" in r.text
        assert "25.0%" in r.text  # 250 of a headcount of 1,000
        r = client.get("/console/enterprises")
        assert "入会率" in r.text
        assert '<td class="num">25.0%</td>' in r.text

    def test_no_headcount_means_no_rate(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        from smartunion.orgs.models import Enterprise

        with db.session() as s:
            ent = s.get(Enterprise, world.ent_a.id)
            assert ent is not None
            ent.employee_count = 0
        login_as(client, world, "staff_a")
        r = client.get(f"/console/enterprises/{world.ent_a.id}")
        assert "<dd>— <span" in r.text

    def test_sibling_members_are_not_counted(self, client: TestClient, world: World) -> None:
        # staff_b's scope is city B: enterprise A is not theirs at all.
        login_as(client, world, "staff_b")
        assert client.get(f"/console/enterprises/{world.ent_a.id}").status_code == 404


class TestDashboardFigures:
    """Item 9: the 工作台 shows key figures for the caller's scope, through stats.privacy."""

    def _figure(self, html: str, key: str) -> str:
        match = re.search(rf'data-figure="{key}">.*?<p class="figure-value">(.*?)</p>', html, re.S)
        assert match, key
        return re.sub(r"<[^>]+>", "", match.group(1)).strip()

    def test_figures_for_the_scope(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        import datetime as dt

        from sqlalchemy import select

        from smartunion.members.models import EmploymentForm, Member
        from tests.factories import bulk_members

        with db.session() as s:
            bulk_members(s, crypto, world.union_a, world.ent_a, 1_199, "员")  # 1,200 in A
            bulk_members(s, crypto, world.union_b, world.ent_b, 50, "乙")  # another city
            rows = s.scalars(
                select(Member).where(Member.name.startswith("员")).order_by(Member.id).limit(12)
            ).all()
            for m in rows:
                m.employment_form = EmploymentForm.DELIVERY_RIDER
            rows[0].join_date = dt.date.today()
        login_as(client, world, "staff_a")
        r = client.get("/console")
        assert r.status_code == 200
        assert self._figure(r.text, "members") == "1,200"
        assert self._figure(r.text, "new_form") == "12"
        assert self._figure(r.text, "membership_rate") == "120.0%"  # 1,200 of 1,000 employees
        # One joined this month: under k = 10, so not shown.
        assert self._figure(r.text, "joined_this_month") == "—"
        assert "统计隐私保护" in r.text

    def test_no_figures_without_the_statistics_permission(
        self, client: TestClient, world: World
    ) -> None:
        login_as(client, world, "auditor")
        r = client.get("/console")
        assert r.status_code == 200
        assert "data-figure" not in r.text


# ---------------------------------------------------------------------------------------
# Item 8: executing a correction request edits the record


class TestCorrectionIsExecuted:
    def _token(self, client: TestClient) -> str:
        r = client.get("/console/privacy/requests")
        match = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        assert match
        return match.group(1)

    def test_accepting_a_phone_correction_changes_the_phone(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        from sqlalchemy import select

        from smartunion.members.models import Member
        from smartunion.privacy.models import SubjectRequest
        from smartunion.security.models import AuditEvent

        login_as(client, world, "staff_a")
        page = client.get("/console/privacy/requests")
        assert 'name="corrected"' in page.text
        token = self._token(client)
        url = f"/console/privacy/requests/{world.request_a_id}/resolve"
        # Accepting without the value: said so, nothing changes.
        r = client.post(url, data={"accept": "1", "with_correction": "1", "csrf_token": token})
        assert r.status_code == 422
        assert "请填写更正后的值" in r.text
        # A malformed value: said so, nothing changes.
        r = client.post(
            url,
            data={"accept": "1", "with_correction": "1", "corrected": "123", "csrf_token": token},
        )
        assert r.status_code == 422
        assert "格式不正确" in r.text
        with db.session() as s:
            request = s.get(SubjectRequest, world.request_a_id)
            assert request is not None
            assert request.status == "open"
        r = client.post(
            url,
            data={
                "accept": "1",
                "with_correction": "1",
                "corrected": "13700001111",
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        with db.session() as s:
            member = s.get(Member, world.member_a.id)
            assert member is not None
            assert member.phone_enc is not None
            assert crypto.decrypt(member.phone_enc, "member.phone") == "13700001111"
            request = s.get(SubjectRequest, world.request_a_id)
            assert request is not None
            assert request.status == "done"
            update = s.scalars(select(AuditEvent).where(AuditEvent.action == "member.update")).one()
            assert update.details == {"fields": ["phone"]}
            assert "13700001111" not in str(update.details)

    def test_refusing_changes_nothing(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        from smartunion.members.models import Member

        login_as(client, world, "staff_a")
        token = self._token(client)
        r = client.post(
            f"/console/privacy/requests/{world.request_a_id}/resolve",
            data={
                "accept": "0",
                "with_correction": "1",
                "corrected": "13700001111",
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303
        with db.session() as s:
            member = s.get(Member, world.member_a.id)
            assert member is not None
            assert member.phone_enc is not None
            assert crypto.decrypt(member.phone_enc, "member.phone") == world.phone_a


class TestMemberForms:
    """Item 8: staff register and edit members in the console, told in Chinese per field."""

    def _token(self, client: TestClient, path: str) -> str:
        r = client.get(path)
        assert r.status_code == 200, r.text
        match = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        assert match
        return match.group(1)

    def _form(self, world: World, **over: str) -> dict[str, str]:
        from tests.factories import citizen_id

        return {
            "name": "赵六",
            "id_number": citizen_id("140105", "19920304", 135),
            "phone": "13911112222",
            "ethnicity": "汉族",
            "education": "college",
            "org_id": str(world.union_a.id),
            "enterprise_id": str(world.ent_a.id),
            "occupation": "电工",
            "skill_level": "junior",
            "employment_form": "standard",
            "join_date": "2020-05-01",
            **over,
        }

    def test_register_a_member(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        from sqlalchemy import select

        from smartunion.members.models import Member
        from smartunion.security.models import AuditEvent

        login_as(client, world, "staff_a")
        assert "登记会员" in client.get("/console/members").text
        token = self._token(client, "/console/members/new")
        data = self._form(world)
        r = client.post(
            "/console/members/new", data={**data, "csrf_token": token}, follow_redirects=False
        )
        assert r.status_code == 303, r.text
        assert "saved=created" in r.headers["location"]
        page = client.get(r.headers["location"])
        assert "会员已登记" in page.text
        assert "赵*" in page.text
        with db.session() as s:
            member = s.scalars(select(Member).where(Member.name == "赵六")).one()
            assert crypto.decrypt(member.id_number_enc, "member.id_number") == data["id_number"]
            assert member.enterprise_id == world.ent_a.id
            create = s.scalars(select(AuditEvent).where(AuditEvent.action == "member.create")).one()
            assert data["id_number"] not in str(create.details)

    def test_each_bad_field_is_named_in_chinese(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        token = self._token(client, "/console/members/new")
        bad = self._form(world, name="赵", id_number="140105199203041234", phone="123")
        r = client.post("/console/members/new", data={**bad, "csrf_token": token})
        assert r.status_code == 422
        assert "请填写姓名（2 至 60 个字）" in r.text
        assert "请填写有效的 18 位公民身份号码" in r.text
        assert "请填写有效的 11 位大陆手机号码" in r.text
        assert "有 3 项需要修改" in r.text
        # What was typed comes back, but never the ID number or the phone.
        assert 'value="电工"' in r.text
        assert "140105199203041234" not in r.text
        r = client.post(
            "/console/members/new",
            data={**self._form(world, join_date="2099-01-01"), "csrf_token": token},
        )
        assert r.status_code == 422
        assert "入会日期须为有效日期" in r.text

    def test_a_registered_id_number_is_said_at_its_field(
        self, client: TestClient, world: World
    ) -> None:
        login_as(client, world, "staff_a")
        token = self._token(client, "/console/members/new")
        r = client.post(
            "/console/members/new",
            data={**self._form(world, id_number=world.id_a), "csrf_token": token},
        )
        assert r.status_code == 409
        assert "该公民身份号码已登记为会员" in r.text

    def test_an_employer_out_of_scope_is_refused(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        token = self._token(client, "/console/members/new")
        r = client.post(
            "/console/members/new",
            data={**self._form(world, enterprise_id=str(world.ent_b.id)), "csrf_token": token},
        )
        assert r.status_code == 422
        assert "不在您的管辖范围内" in r.text

    def test_edit_changes_only_what_changed(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        from sqlalchemy import select

        from smartunion.members.models import Member
        from smartunion.security.models import AuditEvent

        login_as(client, world, "staff_a")
        url = f"/console/members/{world.member_a.id}/edit"
        page = client.get(url)
        assert page.status_code == 200
        assert world.phone_a not in page.text  # masked as a placeholder only
        assert 'value="采煤工"' in page.text
        token = self._token(client, url)
        form = re.findall(r'<option value="([a-z_]+)" selected>', page.text)
        education, skill, employment, status = form[:4]
        r = client.post(
            url,
            data={
                "name": "",
                "phone": "13955556666",
                "ethnicity": "汉族",
                "education": education,
                "occupation": "综采工",
                "skill_level": skill,
                "employment_form": employment,
                "status": status,
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        with db.session() as s:
            member = s.get(Member, world.member_a.id)
            assert member is not None
            assert member.name == "张三丰"  # left empty: unchanged
            assert member.occupation == "综采工"
            assert member.phone_enc is not None
            assert crypto.decrypt(member.phone_enc, "member.phone") == "13955556666"
            update = s.scalars(select(AuditEvent).where(AuditEvent.action == "member.update")).one()
            assert update.details == {"fields": ["occupation", "phone"]}

    def test_edit_errors_are_per_field(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        url = f"/console/members/{world.member_a.id}/edit"
        token = self._token(client, url)
        r = client.post(url, data={"phone": "12345", "name": "张", "csrf_token": token})
        assert r.status_code == 422
        assert "请填写有效的 11 位大陆手机号码" in r.text
        assert "请填写姓名" in r.text

    def test_who_may_not_write_sees_no_form(self, client: TestClient, world: World) -> None:
        login_as(client, world, "analyst")
        assert client.get("/console/members/new").status_code == 403
        login_as(client, world, "staff_b")  # another city: the member is not theirs
        r = client.get(f"/console/members/{world.member_a.id}/edit")
        assert r.status_code == 404


# ---------------------------------------------------------------------------------------
# Item 7: user management in the console, with the API's escalation rules


class TestUserManagement:
    STRONG = "Kq7#mZ2!vR9p"

    def _token(self, client: TestClient) -> str:
        r = client.get("/console/users")
        assert r.status_code == 200, r.text
        match = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        assert match
        return match.group(1)

    def test_org_admin_lists_their_subtree_only(self, client: TestClient, world: World) -> None:
        login_as(client, world, "orgadmin_a")  # union A
        r = client.get("/console/users")
        assert r.status_code == 200
        assert 'data-user="member_a"' in r.text
        assert 'data-user="staff_b"' not in r.text  # another city
        assert 'data-user="admin"' not in r.text  # above them
        # The role list offers only what they may hand out.
        roles = re.findall(r'<select name="role">(.*?)</select>', r.text, re.S)[0]
        assert "组织管理员" in roles
        assert "工作人员" in roles
        assert "系统管理员" not in roles
        assert "安全审计员" not in roles

    def test_create_change_role_and_deactivate(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        from sqlalchemy import select

        from smartunion.security.models import AuditEvent, User

        login_as(client, world, "admin")
        token = self._token(client)
        r = client.post(
            "/console/users",
            data={
                "username": "clerk_a",
                "display_name": "周八",
                "password": self.STRONG,
                "role": "staff",
                "org_id": str(world.city_a.id),
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert r.status_code == 303, r.text
        assert "账号已创建" in client.get(r.headers["location"]).text
        with db.session() as s:
            user = s.scalars(select(User).where(User.username == "clerk_a")).one()
            uid = user.id
        r = client.post(
            f"/console/users/{uid}",
            data={"action": "role", "role": "analyst", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        r = client.post(
            f"/console/users/{uid}",
            data={"action": "deactivate", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "账号已停用" in client.get(r.headers["location"]).text
        with db.session() as s:
            user = s.get(User, uid)
            assert user is not None
            assert user.role.value == "analyst"
            assert user.is_active is False
            actions = set(s.scalars(select(AuditEvent.action)).all())
        assert {"user.create", "user.role_change", "user.deactivate"} <= actions

    def test_escalation_is_refused_in_words(self, client: TestClient, world: World) -> None:
        login_as(client, world, "orgadmin_a")
        token = self._token(client)
        staff = world.users["member_a"]  # a member account: role changes need a record
        r = client.post(
            "/console/users",
            data={
                "username": "boss",
                "password": self.STRONG,
                "role": "system_admin",
                "org_id": str(world.union_a.id),
                "csrf_token": token,
            },
        )
        assert r.status_code == 422
        assert "您不能分配或管理这一角色" in r.text
        r = client.post(
            f"/console/users/{world.users['orgadmin_a'].id}",
            data={"action": "deactivate", "csrf_token": token},
        )
        assert r.status_code == 422
        assert "不能修改自己的角色或停用自己" in r.text
        r = client.post(
            f"/console/users/{world.users['staff_b'].id}",
            data={"action": "deactivate", "csrf_token": token},
        )
        assert r.status_code == 404  # another city's account does not exist for them
        assert staff.is_active

    def test_weak_password_and_taken_username(self, client: TestClient, world: World) -> None:
        login_as(client, world, "admin")
        token = self._token(client)
        base = {"role": "staff", "org_id": str(world.city_a.id), "csrf_token": token}
        r = client.post(
            "/console/users", data={**base, "username": "x_1", "password": "password12"}
        )
        assert r.status_code == 422
        assert "密码强度不够" in r.text
        assert "password12" not in r.text
        r = client.post(
            "/console/users", data={**base, "username": "staff_a", "password": self.STRONG}
        )
        assert r.status_code == 422
        assert "该用户名已被使用" in r.text

    def test_staff_have_no_user_pages(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        assert client.get("/console/users").status_code == 403
        assert 'href="/console/users"' not in client.get("/console").text


class TestPasswordResetInTheConsole:
    STRONG = "Kq7#mZ2!vR9p"

    def test_admin_resets_a_staff_password_and_its_sessions_end(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        from sqlalchemy import select

        from smartunion.security.models import AuditEvent

        login_as(client, world, "admin")
        r = client.get("/console/users")
        token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        assert token
        url = f"/console/users/{world.users['staff_a'].id}"
        weak = client.post(
            url,
            data={"action": "password", "new_password": "password12", "csrf_token": token.group(1)},
        )
        assert weak.status_code == 422
        assert "密码强度不够" in weak.text
        r = client.post(
            url,
            data={"action": "password", "new_password": self.STRONG, "csrf_token": token.group(1)},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "密码已重置" in client.get(r.headers["location"]).text
        with db.session() as s:
            events = s.scalars(
                select(AuditEvent).where(AuditEvent.action == "user.password_reset")
            ).all()
        assert len(events) == 1
        # staff_a's old console session no longer opens the console.
        login_as(client, world, "staff_a")
        assert client.get("/console", follow_redirects=False).status_code == 303

    def test_org_admin_cannot_reset_above_their_role(
        self, client: TestClient, world: World
    ) -> None:
        login_as(client, world, "orgadmin_b")  # city B
        r = client.get("/console/users")
        token = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        assert token
        r = client.post(
            f"/console/users/{world.users['officer_b'].id}",
            data={"action": "password", "new_password": self.STRONG, "csrf_token": token.group(1)},
        )
        assert r.status_code == 403
        assert "您不能分配或管理这一角色" in r.text
