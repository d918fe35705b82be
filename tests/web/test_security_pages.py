"""Console and portal pages over the security and privacy services: TOTP enrolment, the
audit trail, security alerts, exports, member statistics and personal-information rights.

Every test runs on SQLite and PostgreSQL. To keep the run short, checks that are the same
for every page (log-in redirect, 403 for the wrong role, CSRF, CSP, no plaintext) loop over
the pages inside one test, with the page named in each assertion message.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time

import httpx
import pyotp
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from smartunion.db import Database
from smartunion.privacy.models import SubjectRequest
from smartunion.security import audit
from smartunion.security.crypto import FieldCrypto
from smartunion.security.models import AuditEvent, ExportRequest, SecurityAlert, User
from smartunion.web.console.stats import width_class
from tests.factories import PASSWORD, World, bulk_members
from tests.web.test_pages import (
    CSRF_RE,
    assert_csp_clean,
    audit_events,
    csrf_from,
    login_as,
    post_login,
    set_cookies,
)

SECRET_RE = re.compile(r"data-totp-secret>(.*?)</p>", re.S)

# path: (a role that may open it, a staff role that may not)
NEW_PAGES: dict[str, tuple[str, str]] = {
    "/console/audit": ("auditor", "staff_a"),
    "/console/security/alerts": ("officer", "auditor"),
    "/console/exports": ("staff_a", "analyst"),
    "/console/stats": ("analyst", "auditor"),
    "/console/privacy/requests": ("staff_a", "analyst"),
    "/console/privacy/register": ("auditor", "staff_a"),
}


def plaintext(world: World) -> list[str]:
    return [world.id_a, world.id_b, world.phone_a, world.phone_b]


def assert_no_plaintext(r: httpx.Response, world: World, where: str) -> None:
    for value in plaintext(world):
        assert value not in r.text, f"{value} in {where}"


def token_on(client: TestClient, path: str) -> str:
    return csrf_from(client, path)


# ---------------------------------------------------------------------------------------
# the same rules on every new page


class TestEveryNewPage:
    def test_without_a_session(self, client: TestClient, world: World) -> None:
        for path in [*NEW_PAGES, "/console/audit?action=auth.login"]:
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 303, path
            assert r.headers["location"].startswith(f"/login?next={path.split('?')[0]}"), path
        r = client.get("/m/privacy", follow_redirects=False)
        assert r.headers["location"] == "/m/login?next=/m/privacy"
        login_as(client, world, "staff_a")  # a staff session is not a member session
        assert client.get("/m/privacy", follow_redirects=False).status_code == 303

    def test_wrong_role_gets_403(self, client: TestClient, world: World) -> None:
        for path, (_, refused) in NEW_PAGES.items():
            login_as(client, world, refused)
            r = client.get(path)
            assert r.status_code == 403, (path, refused)
            assert "无权访问" in r.text, path
            assert_csp_clean(r)

    @pytest.mark.parametrize("who", ["admin", "allowed"])
    def test_pages_render_clean(self, client: TestClient, world: World, who: str) -> None:
        """200, CSP-clean and no plaintext ID number or phone on any new page."""
        pages = [*NEW_PAGES.items(), ("/console/members", ("staff_a", ""))]
        for path, (allowed, _) in pages:
            login_as(client, world, allowed if who == "allowed" else who)
            r = client.get(path)
            assert r.status_code == 200, (path, r.text[:300])
            assert_csp_clean(r)
            assert_no_plaintext(r, world, path)
        login_as(client, world, "member_a")
        r = client.get("/m/privacy")
        assert r.status_code == 200
        assert_csp_clean(r)
        assert_no_plaintext(r, world, "/m/privacy")

    def test_csrf_on_every_new_post(self, client: TestClient, world: World, db: Database) -> None:
        posts: list[tuple[str, str, dict[str, str]]] = [
            ("auditor", "/console/audit/verify", {}),
            (
                "officer",
                f"/console/security/alerts/{world.alert_a_id}/resolve",
                {"note": "已核实", "lift_suspension": "1"},
            ),
            ("staff_a", "/console/exports", {"format": "csv"}),
            ("orgadmin_a", f"/console/exports/{world.export_a_id}/approve", {"note": "同意"}),
            ("orgadmin_a", f"/console/exports/{world.export_a_id}/reject", {"note": "不同意"}),
            ("staff_a", f"/console/exports/{world.export_a_id}/download", {}),
            (
                "staff_a",
                f"/console/privacy/requests/{world.request_a_id}/resolve",
                {"accept": "1"},
            ),
            ("member_a", "/m/privacy/consents/services/grant", {}),
            ("member_a", "/m/privacy/consents/services/withdraw", {}),
            ("member_a", "/m/privacy/data", {}),
            ("member_a", "/m/privacy/requests", {"kind": "deletion", "note": "退会"}),
        ]
        for who, path, data in posts:
            client.cookies.clear()
            login_as(client, world, who)
            csrf_from(client, "/m/privacy" if who == "member_a" else "/console")
            for token in (None, "forged"):
                body = dict(data, csrf_token=token) if token else data
                r = client.post(path, data=body, follow_redirects=False)
                assert r.status_code == 403, (path, token, r.status_code)
                assert "页面已过期" in r.text, path
                assert_no_plaintext(r, world, path)
        # Nothing happened.
        with db.session() as s:
            alert = s.get(SecurityAlert, world.alert_a_id)
            export = s.get(ExportRequest, world.export_a_id)
            request = s.get(SubjectRequest, world.request_a_id)
            assert alert is not None
            assert alert.resolved_at is None
            assert export is not None
            assert export.status == "pending"
            assert request is not None
            assert request.status == "open"
        for action in ("audit.verify", "member.self_export", "consent.grant", "export.request"):
            assert audit_events(db, action) == [], action

    @pytest.mark.parametrize(
        ("who", "shown", "hidden"),
        [
            ("analyst", ["/console/stats"], ["/console/audit", "/console/exports"]),
            (
                "auditor",
                ["/console/audit", "/console/privacy/register"],
                ["/console/exports", "/console/stats", "/console/security/alerts"],
            ),
            ("officer", ["/console/security/alerts", "/console/audit"], ["/console/exports"]),
            (
                "staff_a",
                ["/console/exports", "/console/privacy/requests", "/console/stats"],
                ["/console/audit", "/console/security/alerts", "/console/privacy/register"],
            ),
        ],
    )
    def test_navigation_by_permission(
        self, client: TestClient, world: World, who: str, shown: list[str], hidden: list[str]
    ) -> None:
        login_as(client, world, who)
        nav = client.get("/console").text.split('class="sidenav"')[1].split("</nav>")[0]
        for path in shown:
            assert f'href="{path}"' in nav, (who, path)
        for path in hidden:
            assert f'href="{path}"' not in nav, (who, path)

    def test_portal_links_the_privacy_page(self, client: TestClient, world: World) -> None:
        login_as(client, world, "member_a")
        assert 'href="/m/privacy"' in client.get("/m/").text


# ---------------------------------------------------------------------------------------
# TOTP enrolment and the second factor


def _enrol_start(client: TestClient, who: str) -> httpx.Response:
    r = post_login(client, who)
    assert r.status_code == 303, r.text[:300]
    assert r.headers["location"] == "/login/totp-enrol"
    return r


def _secret(page: httpx.Response) -> str:
    match = SECRET_RE.search(page.text)
    assert match, "no secret on the enrolment page"
    return re.sub(r"<[^>]+>|\s", "", match.group(1))


class TestTotpEnrolment:
    def test_org_admin_enrols_and_lands_in_the_console(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        r = _enrol_start(client, "orgadmin_a")
        cookies = set_cookies(r)
        assert "su_session" not in cookies
        enrol = cookies["su_enrol"]
        for flag in ("HttpOnly", "SameSite=strict", "Path=/login/totp-enrol", "Max-Age=600"):
            assert flag in enrol, flag
        enrol_token = r.cookies["su_enrol"]

        page = client.get("/login/totp-enrol")
        assert page.status_code == 200
        assert_csp_clean(page)
        assert page.headers["cache-control"] == "no-store"
        assert "<svg" in page.text
        secret = _secret(page)
        assert len(secret) == 32
        assert re.search(r"<span>[A-Z2-7]{4}</span> <span>", page.text)  # groups of four
        # A reload shows the same secret: what was scanned stays valid.
        assert _secret(client.get("/login/totp-enrol")) == secret

        # A wrong code: refused, audited, nothing enabled.
        token = CSRF_RE.search(page.text).group(1)  # type: ignore[union-attr]
        bad = client.post("/login/totp-enrol", data={"code": "000000", "csrf_token": token})
        assert bad.status_code == 400
        assert "验证码不正确" in bad.text
        assert _secret(bad) == secret
        assert [e.outcome for e in audit_events(db, "auth.totp_enrol")] == ["failed"]

        code = pyotp.TOTP(secret).now()
        done = client.post(
            "/login/totp-enrol",
            data={"code": code, "csrf_token": token},
            follow_redirects=False,
        )
        assert done.status_code == 303
        assert done.headers["location"] == "/console"
        assert "HttpOnly" in set_cookies(done)["su_session"]
        assert 'su_enrol=""' in set_cookies(done)["su_enrol"]
        assert client.get("/console").status_code == 200
        with db.session() as s:
            user = s.scalar(select(User).where(User.username == "orgadmin_a"))
            assert user is not None
            assert user.totp_enabled
        assert [e.outcome for e in audit_events(db, "auth.totp_enrol")] == ["failed", "ok"]

        # The enrol session is over.
        client.cookies.clear()
        client.cookies.set("su_enrol", enrol_token)
        r = client.get("/login/totp-enrol", follow_redirects=False)
        assert r.headers["location"] == "/login"

        # From now on the log-in needs the code; the one used to enrol is spent.
        client.cookies.clear()
        r = post_login(client, "orgadmin_a")
        assert r.status_code == 401
        assert "动态验证码" in r.text
        assert 'value="orgadmin_a"' in r.text
        assert PASSWORD not in r.text
        assert re.search(r'name="otp"[^>]*required', r.text)
        assert post_login(client, "orgadmin_a", otp=code).status_code == 401  # replayed
        following = pyotp.TOTP(secret).at(time.time() + 30)  # the next step (drift window)
        r = post_login(client, "orgadmin_a", otp=following)
        assert r.status_code == 303
        assert r.headers["location"] == "/console"

    def test_enrol_session_opens_nothing_else(self, client: TestClient, world: World) -> None:
        r = _enrol_start(client, "admin")
        enrol_token = r.cookies["su_enrol"]
        client.cookies.clear()
        # Neither as the console cookie nor sent along under its own name.
        client.cookies.set("su_session", enrol_token)
        client.cookies.set("su_enrol", enrol_token)
        for path in ("/console", "/console/audit", "/m/", "/console/exports"):
            r = client.get(path, follow_redirects=False)
            assert r.status_code == 303, path
            assert "login" in r.headers["location"], path
        api = client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {enrol_token}"})
        assert api.status_code == 401

    def test_enrol_page_needs_the_enrol_session(self, client: TestClient, world: World) -> None:
        r = client.get("/login/totp-enrol", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/login"
        login_as(client, world, "staff_a")  # a normal session is not an enrol session
        assert client.get("/login/totp-enrol", follow_redirects=False).status_code == 303
        token = csrf_from(client, "/login")
        r = client.post(
            "/login/totp-enrol",
            data={"code": "123456", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        # And the CSRF check comes first.
        _enrol_start(client, "admin")
        assert client.post("/login/totp-enrol", data={"code": "123456"}).status_code == 403

    def test_roles_start_where_they_work(self, client: TestClient, world: World) -> None:
        for who, home in [
            ("analyst", "/console/stats"),
            ("auditor", "/console/audit"),
            ("officer", "/console/security/alerts"),
            ("staff_a", "/console"),
        ]:
            client.cookies.clear()
            r = post_login(client, who)
            assert r.headers["location"] == home, who


# ---------------------------------------------------------------------------------------
# audit trail


class TestAuditPage:
    def test_search_shows_labels_local_time_and_is_audited(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        login_as(client, world, "staff_a")
        client.get(f"/console/members/{world.member_a.id}")
        login_as(client, world, "auditor")
        r = client.get("/console/audit", params={"action": "member.", "actor": "staff_a"})
        assert r.status_code == 200
        assert "查看会员详情" in r.text  # the label of member.read
        assert f"会员 #{world.member_a.id}" in r.text  # the object type, named
        assert "工作人员" in r.text  # the actor's role, translated
        (event,) = [e for e in audit_events(db, "member.read")]
        shanghai = event.occurred_at.astimezone(dt.timezone(dt.timedelta(hours=8)))
        assert shanghai.strftime("%Y-%m-%d %H:%M") in r.text
        (view,) = audit_events(db, "audit.view")
        assert view.actor_username == "auditor"
        assert view.details["filters"]["action"] == "member."
        assert view.details["total"] == 1
        # A date range that excludes today finds nothing.
        tomorrow = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8) + dt.timedelta(days=1)).date()
        r = client.get("/console/audit", params={"since": tomorrow.isoformat()})
        assert "没有符合条件的审计记录" in r.text
        # Junk in the filters is no filter, not an error.
        r = client.get("/console/audit", params={"since": "yesterday", "page": "x", "size": "7"})
        assert r.status_code == 200

    def test_sibling_branch_events_are_invisible(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        client.get("/console/members")  # an event of branch A
        login_as(client, world, "officer_b")
        r = client.get("/console/audit", params={"actor": "staff_a"})
        assert r.status_code == 200
        assert "没有符合条件的审计记录" in r.text
        login_as(client, world, "officer")
        r = client.get("/console/audit", params={"actor": "staff_a"})
        assert "查询会员列表" in r.text

    def test_no_plaintext_in_the_trail(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        token = csrf_from(client, "/console/members")
        client.post(
            "/console/members/lookup",
            data={"kind": "id_number", "value": world.id_a, "csrf_token": token},
        )
        client.post(
            f"/console/members/{world.member_a.id}/reveal",
            data={"reason": "核对身份信息", "fields": ["id_number", "phone"], "csrf_token": token},
        )
        login_as(client, world, "auditor")
        r = client.get("/console/audit", params={"size": "100"})
        assert "查看明文" in r.text
        assert "核对身份信息" in r.text  # the reason is evidence; the numbers are not
        assert_no_plaintext(r, world, "/console/audit")

    def test_verify_chain_intact_then_broken(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        login_as(client, world, "auditor")
        token = csrf_from(client, "/console/audit")
        r = client.post("/console/audit/verify", data={"csrf_token": token})
        assert r.status_code == 200
        assert 'data-verify="intact"' in r.text
        assert "日志链完整" in r.text
        assert_csp_clean(r)
        (event,) = audit_events(db, "audit.verify")
        assert event.outcome == "ok"
        with db.session() as s:
            audit.seal_pending(s, s.info["audit_key"])
            s.execute(update(AuditEvent).where(AuditEvent.seq == 1).values(outcome="forged"))
        r = client.post("/console/audit/verify", data={"csrf_token": token})
        assert 'data-verify="broken"' in r.text
        assert "第 1 条记录处断裂" in r.text


# ---------------------------------------------------------------------------------------
# security alerts


class TestAlertsPage:
    def test_scoped_list_and_resolve(self, client: TestClient, world: World, db: Database) -> None:
        login_as(client, world, "officer_b")
        r = client.get("/console/security/alerts")
        assert "没有待处理的告警" in r.text
        assert "staff_a" not in r.text
        token = csrf_from(client, "/console/security/alerts")
        r = client.post(
            f"/console/security/alerts/{world.alert_a_id}/resolve",
            data={"note": "越权处理", "csrf_token": token},
        )
        assert r.status_code == 404

        login_as(client, world, "officer")
        r = client.get("/console/security/alerts")
        token = csrf_from(client, "/console/security/alerts")  # tokens are per session
        assert "staff_a" in r.text
        assert "test alert" in r.text
        assert "批量读取" in r.text
        short = client.post(
            f"/console/security/alerts/{world.alert_a_id}/resolve",
            data={"note": "x", "csrf_token": token},
        )
        assert short.status_code == 422
        assert "请填写处理说明" in short.text
        with db.session() as s:
            s.execute(
                update(User)
                .where(User.username == "staff_a")
                .values(suspended_at=dt.datetime.now(dt.UTC))
            )
        r = client.post(
            f"/console/security/alerts/{world.alert_a_id}/resolve",
            data={"note": "已与本人核实", "lift_suspension": "1", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        r = client.get(r.headers["location"])
        assert "已处理" in r.text
        assert "没有待处理的告警" in r.text
        assert "已与本人核实" in client.get("/console/security/alerts?all=1").text
        with db.session() as s:
            staff = s.scalar(select(User).where(User.username == "staff_a"))
            assert staff is not None
            assert staff.suspended_at is None
        assert len(audit_events(db, "security.unsuspend")) == 1
        assert len(audit_events(db, "security.alert_resolve")) == 1


# ---------------------------------------------------------------------------------------
# exports


class TestExportPages:
    def test_export_current_list_and_download_once(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        login_as(client, world, "staff_a")
        listing = client.get("/console/members", params={"q": "张", "status": "active"})
        assert "导出当前名单" in listing.text
        assert 'name="q" value="张"' in listing.text
        token = CSRF_RE.search(listing.text).group(1)  # type: ignore[union-attr]
        r = client.post(
            "/console/exports",
            data={"q": "张", "status": "active", "format": "csv", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        page = client.get(r.headers["location"])
        assert "导出申请已通过" in page.text
        (event,) = audit_events(db, "export.request")
        assert event.details["filters"] == {"q": "张", "status": "active"}
        assert event.details["org_id"] == world.city_a.id  # the caller's organisation
        export_id = int(event.object_id)

        r = client.post(
            f"/console/exports/{export_id}/download",
            data={"encoding": "gb18030", "csrf_token": token},
        )
        assert r.status_code == 200
        assert r.headers["content-disposition"].startswith("attachment; filename*=UTF-8''members-")
        assert r.headers["content-type"].startswith("text/csv")
        text = r.content.decode("gb18030")
        assert "张*丰" in text
        assert world.id_a not in text
        assert world.phone_a not in text
        again = client.post(f"/console/exports/{export_id}/download", data={"csrf_token": token})
        assert again.status_code == 409
        assert_csp_clean(again)

    def test_unmasked_needs_a_reason_then_approval(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        token = csrf_from(client, "/console/members")
        r = client.post(
            "/console/exports",
            data={"format": "xlsx", "unmasked": "1", "reason": "", "csrf_token": token},
        )
        assert r.status_code == 422
        assert "须填写事由" in r.text
        assert_csp_clean(r)
        r = client.post(
            "/console/exports",
            data={
                "format": "xlsx",
                "unmasked": "1",
                "reason": "办理联名会员卡",
                "org_id": str(world.union_a.id),
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert "等待第二人审批" in client.get(r.headers["location"]).text
        login_as(client, world, "analyst")
        token = csrf_from(client, "/console")
        r = client.post("/console/exports", data={"format": "csv", "csrf_token": token})
        assert r.status_code == 403

    def test_approval_is_scoped_and_two_person(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        uid = "a1b2c3d4e5f60718"
        login_as(client, world, "orgadmin_b")
        assert uid not in client.get("/console/exports").text
        token = csrf_from(client, "/console/exports")
        r = client.post(f"/console/exports/{world.export_a_id}/approve", data={"csrf_token": token})
        assert r.status_code == 404

        login_as(client, world, "staff_a")  # the requester: sees it, cannot approve it
        page = client.get("/console/exports")
        token = csrf_from(client, "/console/exports")  # tokens are per session
        assert uid in page.text
        assert f"/console/exports/{world.export_a_id}/approve" not in page.text
        r = client.post(f"/console/exports/{world.export_a_id}/approve", data={"csrf_token": token})
        assert r.status_code == 403

        login_as(client, world, "orgadmin_a")
        page = client.get("/console/exports")
        token = csrf_from(client, "/console/exports")
        awaiting = page.text.split('id="awaiting-title"')[1].split("</section>")[0]
        assert uid in awaiting
        # staff_a works above orgadmin_a's organisation: the user service does not name
        # them to orgadmin_a, so the page shows the account number only.
        assert f"#{world.users['staff_a'].id}" in awaiting
        r = client.post(
            f"/console/exports/{world.export_a_id}/approve",
            data={"note": "同意", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "审批意见已保存" in client.get(r.headers["location"]).text
        again = client.post(
            f"/console/exports/{world.export_a_id}/reject", data={"csrf_token": token}
        )
        assert again.status_code == 409  # decided already

        login_as(client, world, "staff_a")
        page = client.get("/console/exports")
        token = csrf_from(client, "/console/exports")
        assert f"/console/exports/{world.export_a_id}/download" in page.text
        r = client.post(
            f"/console/exports/{world.export_a_id}/download", data={"csrf_token": token}
        )
        assert r.status_code == 200
        assert len(audit_events(db, "export.download")) == 1


# ---------------------------------------------------------------------------------------
# statistics


@pytest.mark.parametrize(
    ("count", "largest", "cls"),
    [(None, 10, "w-0"), (0, 10, "w-0"), (10, 10, "w-100"), (5, 10, "w-50"), (1, 1000, "w-1")],
)
def test_width_class(count: int | None, largest: int, cls: str) -> None:
    assert width_class(count, largest) == cls


class TestStatsPage:
    def test_small_groups_are_suppressed(self, client: TestClient, world: World) -> None:
        login_as(client, world, "analyst")
        for by in ("org", "industry", "employment_form", "age_band", "gender", "junk"):
            r = client.get("/console/stats", params={"by": by})
            assert r.status_code == 200, by
            assert_csp_clean(r)
        r = client.get("/console/stats")
        assert "&lt;10（已抑制）" in r.text
        assert world.city_a.name in r.text
        assert f"/console/stats?by=org&amp;org_id={world.city_a.id}" in r.text  # drill down

    def test_bars_and_scope(
        self, client: TestClient, world: World, db: Database, crypto: FieldCrypto
    ) -> None:
        with db.session() as s:
            bulk_members(s, crypto, world.union_a, None, 12, "统计")
        login_as(client, world, "staff_a")
        r = client.get("/console/stats", params={"org_id": world.city_a.id})
        assert r.status_code == 200
        assert "bar w-100" in r.text
        assert ">13<" in r.text  # 1 + 12 active members of union A
        login_as(client, world, "staff_b")
        r = client.get("/console/stats", params={"org_id": world.city_a.id})
        assert r.status_code == 404


# ---------------------------------------------------------------------------------------
# privacy


class TestPortalPrivacy:
    def _token(self, client: TestClient) -> str:
        return csrf_from(client, "/m/privacy")

    def test_consents_grant_and_withdraw(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        login_as(client, world, "member_a")
        page = client.get("/m/privacy")
        assert "会员服务与通知" in page.text
        assert "单独同意" in page.text
        token = self._token(client)
        r = client.post(
            "/m/privacy/consents/services/grant", data={"csrf_token": token}, follow_redirects=False
        )
        assert r.headers["location"] == "/m/privacy?done=granted"
        page = client.get(r.headers["location"])
        assert "已记录您的同意" in page.text
        assert "/m/privacy/consents/services/withdraw" in page.text
        r = client.post("/m/privacy/consents/services/withdraw", data={"csrf_token": token})
        assert r.status_code == 200
        assert "已撤回授权" in r.text
        assert "/m/privacy/consents/services/withdraw" not in r.text
        assert [e.action for e in audit_events(db, "consent.grant")] == ["consent.grant"]
        assert len(audit_events(db, "consent.withdraw")) == 1
        # Statutory purposes take no consent; unknown ones are not a thing.
        r = client.post("/m/privacy/consents/membership/grant", data={"csrf_token": token})
        assert r.status_code == 400
        r = client.post("/m/privacy/consents/analytics/withdraw", data={"csrf_token": token})
        assert r.status_code == 404

    def test_download_my_data_is_the_one_plaintext(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        login_as(client, world, "member_a")
        r = client.post("/m/privacy/data", data={"csrf_token": self._token(client)})
        assert r.status_code == 200
        assert r.headers["content-disposition"] == 'attachment; filename="my-data.json"'
        assert r.headers["cache-control"] == "no-store"
        data = json.loads(r.content)
        assert data["profile"]["id_number"] == world.id_a
        assert data["profile"]["phone"] == world.phone_a
        assert world.id_b not in r.text
        assert len(audit_events(db, "member.self_export")) == 1

    def test_requests_and_their_status(self, client: TestClient, world: World) -> None:
        login_as(client, world, "member_a")
        token = self._token(client)
        # World has an open correction request already: a second one is refused.
        r = client.post(
            "/m/privacy/requests",
            data={"kind": "correction", "field": "phone", "note": "换号", "csrf_token": token},
        )
        assert r.status_code == 409
        assert "同类申请正在处理中" in r.text
        assert "换号" in r.text  # the form keeps what was typed
        r = client.post(
            "/m/privacy/requests",
            data={"kind": "correction", "field": "", "csrf_token": token},
        )
        assert r.status_code == 422
        r = client.post(
            "/m/privacy/requests",
            data={"kind": "deletion", "note": "已调离本单位", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.headers["location"] == "/m/privacy?done=sent"
        page = client.get(r.headers["location"])
        assert "申请已提交" in page.text
        assert page.text.count("处理中") >= 2
        assert "已调离本单位" not in page.text  # the note is stored encrypted, not shown back


class TestStaffPrivacy:
    def test_requests_are_scoped_and_resolved(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        login_as(client, world, "staff_b")
        page = client.get("/console/privacy/requests")
        assert "没有待处理的申请" in page.text
        assert "13700001111" not in page.text
        token = csrf_from(client, "/console/privacy/requests")
        r = client.post(
            f"/console/privacy/requests/{world.request_a_id}/resolve",
            data={"accept": "1", "csrf_token": token},
        )
        assert r.status_code == 404

        login_as(client, world, "staff_a")
        page = client.get("/console/privacy/requests")
        assert "新号码 13700001111" in page.text  # the decrypted note
        assert "手机号码" in page.text
        assert f'href="/console/members/{world.member_a.id}"' in page.text
        assert_no_plaintext(page, world, "/console/privacy/requests")
        token = csrf_from(client, "/console/privacy/requests")  # tokens are per session
        r = client.post(
            f"/console/privacy/requests/{world.request_a_id}/resolve",
            data={"accept": "0", "response": "请携带证明到工会办理", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "没有待处理的申请" in client.get(r.headers["location"]).text
        (event,) = audit_events(db, "privacy.request_resolve")
        assert event.details == {"accept": False, "kind": "correction"}

        login_as(client, world, "member_a")
        page = client.get("/m/privacy")
        assert "未予办理" in page.text
        assert "请携带证明到工会办理" in page.text

    def test_register_for_auditors_and_admins(self, client: TestClient, world: World) -> None:
        for who in ("auditor", "orgadmin_a"):
            login_as(client, world, who)
            r = client.get("/console/privacy/register")
            assert r.status_code == 200, who
            assert "会员信息管理" in r.text
            assert "已结束的登录会话和令牌" in r.text
            assert "联名会员卡" in r.text
        client.get("/lang/en")
        r = client.get("/console/privacy/register")
        assert "Record of processing activities" in r.text
        assert "Ended log-in sessions and tokens" in r.text
