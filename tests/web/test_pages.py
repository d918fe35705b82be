"""Staff console and member portal pages: log-in, CSRF, scope, masking, reveal, i18n, CSP.

Every test runs on SQLite and PostgreSQL (the ``client`` and ``world`` fixtures sit on the
``engine`` parameter). Logged-in cases reuse the ready cookie sessions of ``world``.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from smartunion import i18n
from smartunion.db import Database
from smartunion.members import service as member_service
from smartunion.privacy.register import PURPOSES
from smartunion.privacy.retention import RULES
from smartunion.security.guard import GuardPolicy
from smartunion.security.models import AuditEvent
from smartunion.security.ratelimit import RateLimiter
from smartunion.web.console.alerts import ALERT_KINDS
from smartunion.web.console.audit import LABELLED_ACTIONS, OUTCOMES
from smartunion.web.console.stats import DIMENSIONS
from smartunion.web.pagekit import safe_next
from smartunion.web.portal.privacy import KINDS, NOTICES
from smartunion.web.state import AppState
from tests.factories import PASSWORD, World

TEMPLATES = Path(i18n.__file__).parent / "web" / "templates"


def dynamic_keys() -> set[str]:
    """Catalog keys the feature pages build at run time from code constants."""
    return {
        *(f"audit.action.{a}" for a in LABELLED_ACTIONS),
        *(f"audit.outcome.{o}" for o in OUTCOMES),
        *(f"alerts.kind.{k}" for k in ALERT_KINDS),
        *(f"alerts.severity.{s}" for s in ("critical", "warning")),
        *(f"stats.dim.{d}" for d in DIMENSIONS),
        *(f"privacy.purpose.{p}" for p in PURPOSES),
        *(f"privacy.notice.{n}" for n in NOTICES),
        *(f"privacy.status.{s}" for s in ("open", "done", "refused")),
        *(f"privacy.kind.{k}" for k in KINDS),
        *(f"retention.{r.name}" for r in RULES),
        *(
            f"exports.status.{s}"
            for s in ("pending", "approved", "rejected", "downloaded", "other")
        ),
        *(f"exports.notice.created_{s}" for s in ("ok", "pending")),
        "exports.dataset.members",
        "exports.dataset.other",
    }


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')


# ---------------------------------------------------------------------------------------
# helpers


def login_as(client: TestClient, world: World, who: str) -> None:
    client.cookies.set("su_session", world.cookies[who])


def csrf_from(client: TestClient, path: str = "/login") -> str:
    """Open a page with a form; the client keeps the su_csrf cookie, we keep the token."""
    r = client.get(path)
    assert r.status_code == 200, r.text
    match = CSRF_RE.search(r.text)
    assert match, "no csrf_token field on the page"
    return match.group(1)


def set_cookies(r: httpx.Response) -> dict[str, str]:
    """Set-Cookie headers of one response, by cookie name (whole header as value)."""
    return {h.split("=", 1)[0]: h for h in r.headers.get_list("set-cookie")}


def post_login(
    client: TestClient, username: str, password: str = PASSWORD, **extra: str
) -> httpx.Response:
    token = csrf_from(client)
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token, **extra},
        follow_redirects=False,
    )


def audit_events(db: Database, action: str) -> list[AuditEvent]:
    with db.session() as s:
        return list(s.scalars(select(AuditEvent).where(AuditEvent.action == action)))


def masked_id(world: World) -> str:
    return world.id_a[:6] + "********" + world.id_a[-4:]


class HtmlAudit(HTMLParser):
    """Finds what the CSP forbids: inline scripts, style blocks or attributes, handlers."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = {name.lower() for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self.problems.append("inline <script>")
        if tag == "style":
            self.problems.append("<style> block")
        if "style" in names:
            self.problems.append(f"style= on <{tag}>")
        handlers = sorted(n for n in names if n.startswith("on"))
        if handlers:
            self.problems.append(f"{handlers} on <{tag}>")
        for name, value in attrs:
            if (
                name in ("href", "src", "action")
                and value
                and value.lower().startswith(("javascript:", "http:", "https:", "//"))
            ):
                self.problems.append(f"external or script URL {value!r} on <{tag}>")


def assert_csp_clean(r: httpx.Response) -> None:
    assert "text/html" in r.headers["content-type"]
    csp = r.headers.get("content-security-policy", "")
    assert "script-src 'self'" in csp
    assert "style-src 'self'" in csp
    parser = HtmlAudit()
    parser.feed(r.text)
    parser.close()
    assert parser.problems == [], parser.problems


# ---------------------------------------------------------------------------------------
# i18n catalogs


class TestCatalogs:
    def test_same_keys_in_both_catalogs(self) -> None:
        zh, en = i18n.catalog("zh-CN"), i18n.catalog("en")
        assert set(zh) == set(en)
        assert all(v.strip() for v in [*zh.values(), *en.values()])

    @pytest.mark.parametrize("lang", i18n.LANGUAGES)
    def test_every_enum_value_has_a_label(self, lang: str) -> None:
        texts = i18n.catalog(lang)
        missing = [
            i18n.enum_key(value)
            for enum in i18n.LABELLED_ENUMS
            for value in enum
            if i18n.enum_key(value) not in texts
        ]
        assert missing == []

    def test_every_key_used_in_templates_exists(self) -> None:
        used: set[str] = set()
        for path in TEMPLATES.rglob("*.html"):
            used |= set(re.findall(r"""\bt\(\s*["']([a-z0-9_.]*[a-z0-9_])["']""", path.read_text()))
        # Keys built at run time in the page modules and the templates.
        used |= {f"field.{f}" for f in ("id_number", "phone", "name", "birth_date")}
        prefixes = "login|lookup|reveal|error|portal|enrol|exports|alerts|privacy|audit|stats"
        web = TEMPLATES.parent
        page_modules = [*web.glob("*.py"), *web.glob("console/*.py"), *web.glob("portal/*.py")]
        assert len(page_modules) > 10  # the page modules are where this test looks
        for module in page_modules:
            keys = re.findall(rf'"((?:{prefixes})\.[a-z0-9_.]+)"', module.read_text())
            # Action codes ("audit.view") are not keys: they are labelled as audit.action.*.
            used |= {k for k in keys if not k.endswith(".html") and k not in LABELLED_ACTIONS}
        used |= dynamic_keys()
        catalog = i18n.catalog("zh-CN")
        # A key prefix handed to a label helper ("alerts.kind" + "." + code) is not a key.
        prefixes_of_keys = {
            ".".join(parts[:n])
            for k in catalog
            for parts in [k.split(".")]
            for n in range(1, len(parts))
        }
        missing = sorted(k for k in used if k not in catalog and k not in prefixes_of_keys)
        assert missing == []

    def test_labels_and_fallbacks(self) -> None:
        from smartunion.members.models import EmploymentForm

        zh, en = i18n.translator("zh-CN"), i18n.translator("en")
        assert zh.enum(EmploymentForm.DELIVERY_RIDER) == "网约送餐员"
        assert en.enum(EmploymentForm.DELIVERY_RIDER) == "Food-delivery rider"
        assert en("no.such.key") == "no.such.key"
        assert zh("pager.summary", total=3, first=1, last=3) == "共 3 条，当前第 1–3 条"
        assert i18n.translator("fr").lang == "zh-CN"

    @pytest.mark.parametrize(
        ("code", "lang"),
        [("zh-CN", "zh-CN"), ("zh", "zh-CN"), ("en", "en"), ("en-GB", "en"), ("fr", None)],
    )
    def test_normalise(self, code: str, lang: str | None) -> None:
        assert i18n.normalise(code) == lang


# ---------------------------------------------------------------------------------------
# language switch and redirects


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/console/members", "/console/members"),
        ("/console?open=1&open=2", "/console?open=1&open=2"),
        ("//evil.example/x", "/"),
        ("/\\evil.example", "/"),
        ("https://evil.example/", "/"),
        ("javascript:alert(1)", "/"),
        ("console", "/"),
        ("/x\r\nSet-Cookie: a=b", "/"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_safe_next(value: str | None, expected: str) -> None:
    assert safe_next(value, "/") == expected


class TestLanguage:
    def test_login_page_is_chinese_by_default(self, client: TestClient) -> None:
        r = client.get("/login")
        assert r.status_code == 200
        assert "工作人员登录" in r.text
        assert '<html lang="zh-CN">' in r.text

    def test_english_after_switching(self, client: TestClient) -> None:
        r = client.get("/lang/en", params={"next": "/login"}, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/login"
        assert "HttpOnly" in set_cookies(r)["lang"]
        r = client.get("/login")
        assert "Staff log-in" in r.text
        assert "工作人员登录" not in r.text
        assert '<html lang="en">' in r.text
        client.get("/lang/zh-CN")
        assert "工作人员登录" in client.get("/login").text

    def test_switch_refuses_foreign_next(self, client: TestClient) -> None:
        r = client.get("/lang/en", params={"next": "//evil.example"}, follow_redirects=False)
        assert r.headers["location"] == "/"

    def test_unknown_language(self, client: TestClient) -> None:
        r = client.get("/lang/xx", follow_redirects=False)
        assert r.status_code == 404
        assert_csp_clean(r)


# ---------------------------------------------------------------------------------------
# log-in and log-out


class TestLogin:
    def test_wrong_password(self, client: TestClient, world: World, db: Database) -> None:
        r = post_login(client, "staff_a", "wrong-password")
        assert r.status_code == 401
        assert "su_session" not in set_cookies(r)
        assert "用户名或密码错误" in r.text
        assert 'value="staff_a"' in r.text  # the username is kept …
        assert "wrong-password" not in r.text  # … the password never echoed
        failed = [e for e in audit_events(db, "auth.login") if e.outcome == "failed"]
        assert len(failed) == 1  # the refusal's audit event was committed

    def test_unknown_user_gets_the_same_answer(self, client: TestClient, world: World) -> None:
        wrong_password = post_login(client, "staff_a", "nope")
        unknown_user = post_login(client, "nobody", "nope")
        assert unknown_user.status_code == wrong_password.status_code == 401
        message = re.compile(r'role="alert">([^<]*)<')
        assert message.findall(unknown_user.text) == message.findall(wrong_password.text)

    def test_success_sets_an_httponly_session_cookie(
        self, client: TestClient, world: World, app_state: AppState
    ) -> None:
        r = post_login(client, "staff_a")
        assert r.status_code == 303
        assert r.headers["location"] == "/console"
        cookie = set_cookies(r)["su_session"]
        assert "HttpOnly" in cookie
        assert "SameSite=lax" in cookie
        assert f"Max-Age={app_state.settings.session_max_age_seconds}" in cookie
        assert "Secure" not in cookie
        assert "su_csrf" in set_cookies(r)  # a fresh CSRF secret for the new session
        page = client.get("/console")
        assert page.status_code == 200
        assert "太原市总工会" in page.text

    def test_secure_cookie_when_configured(
        self, client: TestClient, world: World, app_state: AppState
    ) -> None:
        token = csrf_from(client)
        app_state.settings.cookie_secure = True
        r = client.post(
            "/login",
            data={"username": "staff_a", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert "Secure" in set_cookies(r)["su_session"]

    def test_session_fixation(self, client: TestClient, world: World) -> None:
        planted = world.cookies["staff_b"]
        client.cookies.set("su_session", planted)
        r = post_login(client, "staff_a")
        assert r.status_code == 303
        fresh = r.cookies["su_session"]
        assert fresh != planted
        client.cookies.clear()
        client.cookies.set("su_session", planted)
        r = client.get("/console", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")
        client.cookies.clear()
        client.cookies.set("su_session", fresh)
        assert client.get("/console", follow_redirects=False).status_code == 200

    @pytest.mark.parametrize(
        ("next_url", "target"),
        [("/console/members", "/console/members"), ("https://evil.example/", "/console")],
    )
    def test_next(self, client: TestClient, world: World, next_url: str, target: str) -> None:
        r = post_login(client, "staff_a", next=next_url)
        assert r.headers["location"] == target

    def test_login_page_carries_next(self, client: TestClient, world: World) -> None:
        r = client.get("/console/members", follow_redirects=True)
        assert r.url.path == "/login"
        assert 'name="next" value="/console/members"' in r.text

    def test_member_is_sent_to_the_portal(self, client: TestClient, world: World) -> None:
        r = post_login(client, "member_a")
        assert r.status_code == 303
        assert r.headers["location"] == "/m/"

    def test_two_factor_enrolment_required(self, client: TestClient, world: World) -> None:
        # admin's role needs TOTP by default and the factory account has none: no session,
        # only the way to the enrolment page (tests/web/test_security_pages.py goes on).
        r = post_login(client, "admin")
        assert r.status_code == 303
        assert r.headers["location"] == "/login/totp-enrol"
        assert "su_session" not in set_cookies(r)
        assert "su_enrol" in set_cookies(r)

    def test_rate_limited(self, client: TestClient, world: World, app_state: AppState) -> None:
        app_state.login_limiter = RateLimiter(2)
        assert post_login(client, "staff_a", "x").status_code == 401
        assert post_login(client, "staff_a", "x").status_code == 401
        r = post_login(client, "staff_a")
        assert r.status_code == 429
        assert "su_session" not in set_cookies(r)

    @pytest.mark.parametrize("token", [None, "", "forged-token-value"])
    def test_csrf_on_login(self, client: TestClient, world: World, token: str | None) -> None:
        csrf_from(client)
        data = {"username": "staff_a", "password": PASSWORD}
        if token is not None:
            data["csrf_token"] = token
        r = client.post("/login", data=data, follow_redirects=False)
        assert r.status_code == 403
        assert "su_session" not in set_cookies(r)
        assert "页面已过期" in r.text
        assert_csp_clean(r)

    def test_csrf_token_without_its_cookie(self, client: TestClient, world: World) -> None:
        token = csrf_from(client)
        client.cookies.clear()
        r = client.post(
            "/login",
            data={"username": "staff_a", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 403

    def test_logout(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        token = csrf_from(client, "/console")
        r = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/login"
        assert 'su_session=""' in set_cookies(r)["su_session"]
        client.cookies.clear()
        login_as(client, world, "staff_a")  # the old token is dead now
        assert client.get("/console", follow_redirects=False).status_code == 303

    @pytest.mark.parametrize("token", [None, "forged"])
    def test_logout_needs_csrf(self, client: TestClient, world: World, token: str | None) -> None:
        login_as(client, world, "staff_a")
        csrf_from(client, "/console")
        r = client.post("/logout", data={"csrf_token": token} if token else {})
        assert r.status_code == 403
        assert client.get("/console", follow_redirects=False).status_code == 200


# ---------------------------------------------------------------------------------------
# console access


CONSOLE_PATHS = [
    "/console",
    "/console/members",
    "/console/members/1",
    "/console/enterprises",
    "/console/enterprises/1",
    "/console/orgs/1",
    "/console/orgs/1/children",
]


class TestConsoleAccess:
    @pytest.mark.parametrize("path", CONSOLE_PATHS)
    def test_without_a_session(self, client: TestClient, world: World, path: str) -> None:
        r = client.get(path, follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == f"/login?next={path}"

    def test_member_cookie_is_not_a_staff_session(self, client: TestClient, world: World) -> None:
        login_as(client, world, "member_a")
        r = client.get("/console", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/login")

    @pytest.mark.parametrize("path", ["/console/members", "/console/enterprises"])
    def test_analyst_is_refused(self, client: TestClient, world: World, path: str) -> None:
        login_as(client, world, "analyst")
        r = client.get(path)
        assert r.status_code == 403
        assert "无权访问" in r.text
        assert "张*丰" not in r.text
        assert_csp_clean(r)

    def test_analyst_nav_hides_what_they_cannot_open(
        self, client: TestClient, world: World
    ) -> None:
        login_as(client, world, "analyst")
        r = client.get("/console")
        assert r.status_code == 200
        assert 'href="/console/members"' not in r.text
        assert "山西省总工会" in r.text

    def test_auditor_cannot_read_members(self, client: TestClient, world: World) -> None:
        login_as(client, world, "auditor")
        assert client.get(f"/console/members/{world.member_a.id}").status_code == 403

    @pytest.mark.parametrize(
        "path",
        [
            "/console/members/not-a-number",
            "/console/members/0",
            # Beyond INTEGER: refused before it reaches the driver (which would raise).
            "/console/members/99999999999999999999",
            "/console/orgs/3000000000/children",
        ],
    )
    def test_bad_path_parameter_is_a_page(
        self, client: TestClient, world: World, path: str
    ) -> None:
        login_as(client, world, "staff_a")
        r = client.get(path)
        assert r.status_code == 400
        assert_csp_clean(r)

    @pytest.mark.parametrize(
        "query", ["org_id=99999999999", "enterprise_id=-1", "open=99999999999&open=x"]
    )
    def test_junk_numbers_in_queries(self, client: TestClient, world: World, query: str) -> None:
        login_as(client, world, "staff_a")
        path = "/console?" if query.startswith("open") else "/console/members?"
        assert client.get(path + query).status_code == 200


# ---------------------------------------------------------------------------------------
# members


class TestMemberList:
    def test_masked_and_scoped(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/console/members")
        assert r.status_code == 200
        assert "张*丰" in r.text
        assert "张三丰" not in r.text
        assert "李*" not in r.text  # branch B
        assert world.id_a not in r.text
        assert world.phone_a not in r.text
        assert world.id_a[:6] not in r.text  # not even the masked form in a list
        assert "1985" in r.text
        assert "1985-03-12" not in r.text
        assert "共 1 条" in r.text
        assert f'href="/console/members/{world.member_a.id}"' in r.text

    @pytest.mark.parametrize(
        ("params", "shown"),
        [
            ({"q": "张"}, True),
            ({"q": "李"}, False),
            ({"employment_form": "delivery_rider"}, False),
            ({"employment_form": "standard", "status": "active"}, True),
            ({"status": "not-a-status", "page": "x", "size": "7"}, True),  # junk ignored
            ({"org_id": "", "enterprise_id": ""}, True),
        ],
    )
    def test_filters(
        self, client: TestClient, world: World, params: dict[str, str], shown: bool
    ) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/console/members", params=params)
        assert r.status_code == 200
        assert ("张*丰" in r.text) is shown

    def test_org_and_enterprise_filters(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/console/members", params={"org_id": world.union_a.id})
        assert "张*丰" in r.text
        assert world.union_a.name in r.text
        r = client.get("/console/members", params={"enterprise_id": world.ent_a.id})
        assert "张*丰" in r.text
        assert world.ent_a.name in r.text

    def test_out_of_scope_org_filter(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/console/members", params={"org_id": world.union_b.id})
        assert r.status_code == 404

    def test_pagination(self, client: TestClient, world: World) -> None:
        login_as(client, world, "admin")
        r = client.get("/console/members", params={"page": 2, "size": 20})
        assert r.status_code == 200
        assert "共 2 条" in r.text
        assert "张*丰" not in r.text
        assert "李*" not in r.text

    def test_list_is_audited(self, client: TestClient, world: World, db: Database) -> None:
        login_as(client, world, "staff_a")
        client.get("/console/members", params={"q": "张"})
        (event,) = audit_events(db, "member.list")
        assert event.details["ids"] == [world.member_a.id]


class TestLookup:
    def _lookup(self, client: TestClient, kind: str, value: str) -> httpx.Response:
        token = csrf_from(client, "/console/members")
        return client.post(
            "/console/members/lookup", data={"kind": kind, "value": value, "csrf_token": token}
        )

    def test_by_id_number(self, client: TestClient, world: World, db: Database) -> None:
        login_as(client, world, "staff_a")
        r = self._lookup(client, "id_number", world.id_a)
        assert r.status_code == 200
        assert "找到 1 名会员" in r.text
        assert world.id_a not in r.text  # the number typed in is not echoed back
        assert len(audit_events(db, "member.lookup")) == 1

    def test_by_phone_outside_scope(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = self._lookup(client, "phone", world.phone_b)
        assert r.status_code == 200
        assert "没有匹配的会员" in r.text
        assert world.phone_b not in r.text

    @pytest.mark.parametrize(("kind", "value"), [("id_number", "1234"), ("phone", "12"), ("x", "")])
    def test_bad_input(self, client: TestClient, world: World, kind: str, value: str) -> None:
        login_as(client, world, "staff_a")
        r = self._lookup(client, kind, value)
        assert r.status_code == 422
        assert 'role="alert"' in r.text

    def test_needs_csrf(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.post("/console/members/lookup", data={"kind": "phone", "value": "1"})
        assert r.status_code == 403


class TestMemberDetail:
    def test_masked_detail(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get(f"/console/members/{world.member_a.id}")
        assert r.status_code == 200
        assert masked_id(world) in r.text
        assert "138****5678" in r.text
        assert world.id_a not in r.text
        assert world.phone_a not in r.text
        for label in ("公民身份号码", "手机号码", "文化程度", "用工形式", "技能等级", "入会日期"):
            assert label in r.text
        assert "中级工（四级）" in r.text
        assert "查看事由" in r.text  # the reveal form, for a role that may reveal

    def test_sibling_branch_gets_404(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_b")
        r = client.get(f"/console/members/{world.member_a.id}")
        assert r.status_code == 404
        assert "记录不存在" in r.text
        assert "张*丰" not in r.text
        assert_csp_clean(r)

    def test_unknown_id_gets_the_same_404(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_b")
        other = client.get(f"/console/members/{world.member_a.id}")
        missing = client.get("/console/members/999999")
        assert missing.status_code == other.status_code == 404


class TestReveal:
    REASON = "办理转会手续，核对身份"

    def _reveal(
        self, client: TestClient, member_id: int, token: str | None, **data: object
    ) -> httpx.Response:
        body: dict[str, object] = {"reason": self.REASON, "fields": ["id_number", "phone"]}
        body.update(data)
        if token is not None:
            body["csrf_token"] = token
        return client.post(f"/console/members/{member_id}/reveal", data=body)

    def test_reveal_shows_plaintext_once_and_audits(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        login_as(client, world, "staff_a")
        token = csrf_from(client, f"/console/members/{world.member_a.id}")
        r = self._reveal(client, world.member_a.id, token)
        assert r.status_code == 200
        assert world.id_a in r.text
        assert world.phone_a in r.text
        assert world.id_a not in str(r.url)
        assert world.id_a not in str(r.headers)
        (event,) = audit_events(db, "member.reveal")
        assert event.outcome == "ok"
        assert event.object_id == str(world.member_a.id)
        assert event.details["reason"] == self.REASON
        assert event.details["fields"] == ["id_number", "phone"]
        stored = json.dumps(event.details, ensure_ascii=False)
        assert world.id_a not in stored
        assert world.phone_a not in stored
        # Opening the record again shows the masked form only.
        again = client.get(f"/console/members/{world.member_a.id}")
        assert world.id_a not in again.text

    def test_needs_csrf(self, client: TestClient, world: World, db: Database) -> None:
        login_as(client, world, "staff_a")
        csrf_from(client, f"/console/members/{world.member_a.id}")
        for token in (None, "forged"):
            r = self._reveal(client, world.member_a.id, token)
            assert r.status_code == 403
            assert world.id_a not in r.text
        assert audit_events(db, "member.reveal") == []

    def test_sibling_branch_cannot_reveal(
        self, client: TestClient, world: World, db: Database
    ) -> None:
        login_as(client, world, "staff_b")
        token = csrf_from(client, "/console")
        r = self._reveal(client, world.member_a.id, token)
        assert r.status_code == 404
        assert world.id_a not in r.text
        assert world.phone_a not in r.text
        assert audit_events(db, "member.reveal") == []

    @pytest.mark.parametrize(
        ("data", "message"),
        [({"reason": ""}, "请填写查看事由"), ({"reason": "ab"}, "请填写查看事由")],
    )
    def test_reason_required(
        self, client: TestClient, world: World, db: Database, data: dict[str, str], message: str
    ) -> None:
        login_as(client, world, "staff_a")
        token = csrf_from(client, f"/console/members/{world.member_a.id}")
        r = self._reveal(client, world.member_a.id, token, **data)
        assert r.status_code == 422
        assert message in r.text
        assert world.id_a not in r.text
        assert audit_events(db, "member.reveal") == []

    def test_fields_required(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        token = csrf_from(client, f"/console/members/{world.member_a.id}")
        r = self._reveal(client, world.member_a.id, token, fields=["bank_card"])
        assert r.status_code == 422
        assert "请至少选择一个查看项目" in r.text

    def test_rate_limited(
        self, client: TestClient, world: World, db: Database, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(member_service, "REVEALS_PER_HOUR", 0)
        login_as(client, world, "staff_a")
        token = csrf_from(client, f"/console/members/{world.member_a.id}")
        r = self._reveal(client, world.member_a.id, token)
        assert r.status_code == 429
        assert "查看次数已达上限" in r.text
        assert world.id_a not in r.text
        (event,) = audit_events(db, "member.reveal")
        assert event.outcome == "denied"  # kept although the request was refused

    def test_analyst_cannot_reveal(self, client: TestClient, world: World) -> None:
        login_as(client, world, "analyst")
        token = csrf_from(client, "/console")
        r = self._reveal(client, world.member_a.id, token)
        assert r.status_code == 403
        assert world.id_a not in r.text


class TestInsiderGuard:
    """The guard's refusals become pages, and what it wrote (alert, suspension) is kept."""

    def _policy(self, db: Database, policy: GuardPolicy) -> None:
        db.sessionmaker.kw["info"]["guard_policy"] = policy

    def test_suspension_is_a_page(self, client: TestClient, world: World, db: Database) -> None:
        self._policy(db, GuardPolicy(min_normal_daily=0, hard_margin=0))
        login_as(client, world, "staff_a")
        r = client.get("/console/members")
        assert r.status_code == 403
        assert "暂停" in r.text
        assert "张*丰" not in r.text
        assert_csp_clean(r)
        assert len(audit_events(db, "security.suspend")) == 1
        # The suspension revoked the session: the next page asks for a log-in.
        assert client.get("/console", follow_redirects=False).status_code == 303

    def test_daily_quota_is_a_page(self, client: TestClient, world: World, db: Database) -> None:
        self._policy(db, GuardPolicy(daily_read_quota=0))
        login_as(client, world, "staff_a")
        r = client.get(f"/console/members/{world.member_a.id}")
        assert r.status_code == 429
        assert "上限" in r.text
        assert world.id_a[:6] not in r.text


# ---------------------------------------------------------------------------------------
# organisations and enterprises


class TestOrgs:
    def test_dashboard_tree(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/console")
        assert r.status_code == 200
        # The caller's organisation, expanded one level; nothing of the sibling branch.
        assert world.city_a.name in r.text
        assert world.union_a.name in r.text
        assert world.city_b.name not in r.text
        assert world.province.name not in r.text
        assert "工作人员" in r.text  # role label in the header

    def test_tree_collapses_and_expands_by_links(self, client: TestClient, world: World) -> None:
        login_as(client, world, "admin")
        collapsed = client.get("/console", params={"open": ""})
        assert world.city_a.name not in collapsed.text
        assert f"/console?open={world.province.id}" in collapsed.text
        opened = client.get("/console", params={"open": [world.province.id, world.city_a.id]})
        assert world.city_a.name in opened.text
        assert world.union_a.name in opened.text
        assert world.union_b.name not in opened.text  # city_b stays collapsed

    def test_children_fragment(self, client: TestClient, world: World) -> None:
        login_as(client, world, "admin")
        r = client.get(f"/console/orgs/{world.province.id}/children")
        assert r.status_code == 200
        assert world.city_a.name in r.text
        assert world.city_b.name in r.text
        assert "<html" not in r.text
        login_as(client, world, "staff_b")
        assert client.get(f"/console/orgs/{world.city_a.id}/children").status_code == 404

    def test_org_page(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get(f"/console/orgs/{world.union_a.id}")
        assert r.status_code == 200
        assert world.city_a.name in r.text  # breadcrumb within scope
        assert world.province.name not in r.text  # above the caller's scope
        assert world.ent_a.name in r.text
        assert f"/console/members?org_id={world.union_a.id}" in r.text
        assert "基层工会" in r.text
        assert "太原市" in r.text

    def test_org_outside_scope(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        assert client.get(f"/console/orgs/{world.city_b.id}").status_code == 404


class TestEnterprises:
    def test_list(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/console/enterprises")
        assert r.status_code == 200
        assert world.ent_a.name in r.text
        assert world.ent_b.name not in r.text
        assert "煤炭开采和洗选业" in r.text
        assert client.get("/console/enterprises", params={"q": "大同"}).text.count("<tbody>") == 0

    def test_detail_with_departments(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get(f"/console/enterprises/{world.ent_a.id}")
        assert r.status_code == 200
        assert "采煤一队" in r.text
        assert world.ent_a.uscc in r.text
        assert f"/console/members?enterprise_id={world.ent_a.id}" in r.text

    def test_detail_outside_scope(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        assert client.get(f"/console/enterprises/{world.ent_b.id}").status_code == 404


# ---------------------------------------------------------------------------------------
# member portal


class TestPortal:
    def test_own_profile_masked(self, client: TestClient, world: World) -> None:
        login_as(client, world, "member_a")
        r = client.get("/m/")
        assert r.status_code == 200
        assert "张三丰" in r.text  # their own name, whole (issue 9 #14); the rest masked
        assert "张*丰" not in r.text
        assert world.member_a.member_no in r.text
        assert world.union_a.name in r.text
        assert world.ent_a.name in r.text
        assert "2010-05-01" in r.text
        assert masked_id(world) in r.text
        assert world.id_a not in r.text
        assert world.phone_a not in r.text
        assert "李*" not in r.text
        assert 'name="viewport"' in r.text

    def test_staff_session_is_sent_to_portal_login(self, client: TestClient, world: World) -> None:
        login_as(client, world, "staff_a")
        r = client.get("/m/", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"].startswith("/m/login")

    def test_without_a_session(self, client: TestClient) -> None:
        r = client.get("/m/", follow_redirects=False)
        assert r.status_code == 303
        assert r.headers["location"] == "/m/login?next=/m/"

    def test_member_login(self, client: TestClient, world: World) -> None:
        token = csrf_from(client, "/m/login")
        r = client.post(
            "/m/login",
            data={"username": "member_a", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 303
        assert r.headers["location"] == "/m/"
        assert "HttpOnly" in set_cookies(r)["su_session"]
        assert "张三丰" in client.get("/m/").text

    def test_staff_are_told_to_use_the_console(self, client: TestClient, world: World) -> None:
        token = csrf_from(client, "/m/login")
        r = client.post(
            "/m/login",
            data={"username": "staff_a", "password": PASSWORD, "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 403
        assert "su_session" not in set_cookies(r)
        assert "管理后台" in r.text

    def test_wrong_password(self, client: TestClient, world: World) -> None:
        token = csrf_from(client, "/m/login")
        r = client.post(
            "/m/login",
            data={"username": "member_a", "password": "nope", "csrf_token": token},
            follow_redirects=False,
        )
        assert r.status_code == 401
        assert "su_session" not in set_cookies(r)

    def test_logout(self, client: TestClient, world: World) -> None:
        login_as(client, world, "member_a")
        token = csrf_from(client, "/m/")
        r = client.post("/m/logout", data={"csrf_token": token}, follow_redirects=False)
        assert r.headers["location"] == "/m/login"
        client.cookies.clear()
        login_as(client, world, "member_a")
        assert client.get("/m/", follow_redirects=False).status_code == 303


# ---------------------------------------------------------------------------------------
# every page: CSP header, nothing inline


PAGES: list[tuple[str | None, str]] = [
    (None, "/login"),
    (None, "/m/login"),
    ("staff_a", "/console"),
    ("staff_a", "/console/members"),
    ("staff_a", "/console/members/{member_a}"),
    ("staff_a", "/console/enterprises"),
    ("staff_a", "/console/enterprises/{ent_a}"),
    ("staff_a", "/console/orgs/{union_a}"),
    ("staff_a", "/console/orgs/{city_a}/children"),
    ("staff_b", "/console/members/{member_a}"),
    ("analyst", "/console/members"),
    ("member_a", "/m/"),
]


@pytest.mark.parametrize(("who", "path"), PAGES)
def test_pages_obey_the_csp(client: TestClient, world: World, who: str | None, path: str) -> None:
    if who:
        login_as(client, world, who)
    url = path.format(
        member_a=world.member_a.id,
        ent_a=world.ent_a.id,
        union_a=world.union_a.id,
        city_a=world.city_a.id,
    )
    r = client.get(url)
    assert r.status_code in (200, 403, 404)
    assert_csp_clean(r)


def test_reveal_result_obeys_the_csp(client: TestClient, world: World) -> None:
    login_as(client, world, "staff_a")
    token = csrf_from(client, f"/console/members/{world.member_a.id}")
    r = client.post(
        f"/console/members/{world.member_a.id}/reveal",
        data={"reason": "核对身份信息", "fields": ["id_number"], "csrf_token": token},
    )
    assert r.status_code == 200
    assert_csp_clean(r)
    assert r.headers["cache-control"] == "no-store"


def test_static_assets_are_served(client: TestClient) -> None:
    for path in ("/static/css/app.css", "/static/css/portal.css", "/static/js/app.js"):
        assert client.get(path).status_code == 200, path
    logo = client.get("/static/img/logo.svg")
    assert logo.status_code == 200
    assert "style=" not in logo.text
