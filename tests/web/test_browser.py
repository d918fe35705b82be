"""The console and the member portal in a real headless Chromium (Playwright).

The app runs under uvicorn on a free local port against a temporary SQLite *file* with
committed data (the per-test rolled-back connection of the other tests cannot be shared
with a server thread). Chromium is the Debian package at /usr/bin/chromium; Playwright's
own browser download is never used (no network here).

Screenshots go to the test's tmp_path and, for a human to look at, to /tmp/su-*.png.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pyotp
import pytest
import uvicorn

from smartunion import schema
from smartunion.config import Settings
from smartunion.db import Database, make_engine
from smartunion.security.crypto import FieldCrypto
from smartunion.security.keys import KeyRing
from smartunion.web.app import create_app
from smartunion.web.state import AppState
from tests.factories import PASSWORD, build_world

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Page

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
SHOT_DIR = Path("/tmp")  # noqa: S108 (a fixed, well-known place for people to look)
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]


@dataclass(frozen=True)
class LiveApp:
    base_url: str
    id_a: str
    phone_a: str
    member_a_id: int


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def live_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveApp]:
    data_dir = tmp_path_factory.mktemp("live")
    url = f"sqlite:///{data_dir / 'smartunion.db'}"
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    crypto = FieldCrypto(KeyRing.generate())
    # The audit key must come with the database: every page read is audited.
    db = Database.from_url(url, audit_key=crypto.ring.audit_key)
    with db.session() as s:
        world = build_world(s, crypto)
        facts = (world.id_a, world.phone_a, world.member_a.id)
    settings = Settings(data_dir=data_dir, database_url=url)
    app = create_app(settings, state=AppState(settings=settings, db=db, crypto=crypto))
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn-live", daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            pytest.fail("the app did not start under uvicorn")
        time.sleep(0.1)
    try:
        yield LiveApp(base_url, *facts)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        db.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.skip(f"chromium not installed: {CHROMIUM} is absent (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def _keep(page: Page, tmp_path: Path, name: str) -> None:
    shot = tmp_path / name
    page.screenshot(path=str(shot), full_page=True)
    # A copy where the lead can look at it; never fail the test over it.
    with contextlib.suppress(OSError):
        shutil.copyfile(shot, SHOT_DIR / name)


def _collect_errors(page: Page) -> list[str]:
    errors: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    return errors


def test_staff_logs_in_and_opens_a_member(
    live_app: LiveApp, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors = _collect_errors(page)

    page.goto(f"{live_app.base_url}/")
    page.wait_for_url("**/login?next=/console")
    assert "工作人员登录" in page.content()
    _keep(page, tmp_path, "su-login.png")

    page.fill("input[name=username]", "staff_a")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console")
    assert "组织架构" in page.content()
    assert page.locator(".tree-label", has_text="太原煤业有限公司工会委员会").count() == 1
    _keep(page, tmp_path, "su-console-dashboard.png")

    page.click(".sidenav >> text=会员")
    page.wait_for_url("**/console/members")
    assert "张*丰" in page.content()
    assert live_app.id_a not in page.content()
    _keep(page, tmp_path, "su-console-members.png")

    # Click the row (not the link in it): app.js opens the record.
    page.locator("tr[data-href]", has_text="张*丰").locator("td").nth(2).click()
    page.wait_for_url(f"**/console/members/{live_app.member_a_id}")
    content = page.content()
    masked = live_app.id_a[:6] + "********" + live_app.id_a[-4:]
    assert masked in content
    assert live_app.id_a not in content
    assert live_app.phone_a not in content
    _keep(page, tmp_path, "su-console.png")

    # The reveal form: plaintext on the response page only.
    page.fill("textarea[name=reason]", "办理转会手续，核对身份")
    page.click(".reveal-form button[type=submit]")
    page.wait_for_selector(".reveal-result")
    assert live_app.id_a in page.content()
    assert live_app.id_a not in page.url
    _keep(page, tmp_path, "su-console-reveal.png")

    context.close()
    csp = [e for e in errors if "Content Security Policy" in e or "Refused to" in e]
    assert csp == []
    assert errors == []


def test_org_tree_expands_in_place(live_app: LiveApp, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{live_app.base_url}/login")
    page.fill("input[name=username]", "staff_b")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console")
    # Collapse the root, then expand it again through the fetched fragment.
    page.goto(f"{live_app.base_url}/console?open=")
    assert page.locator(".tree-label", has_text="大同机械有限公司工会委员会").count() == 0
    url_before = page.url
    page.click(".tree-toggle")
    page.wait_for_selector(".tree-label >> text=大同机械有限公司工会委员会")
    assert page.url == url_before  # expanded in place, no navigation
    assert page.get_attribute(".tree-toggle", "aria-expanded") == "true"
    context.close()
    assert errors == []


def test_member_portal_on_a_phone(live_app: LiveApp, browser: Browser, tmp_path: Path) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 812},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="zh-CN",
    )
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{live_app.base_url}/m/")
    page.wait_for_url("**/m/login?next=/m/")
    page.fill("input[name=username]", "member_a")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/m/")
    content = page.content()
    # Their own name on their own card, whole; ID number and phone stay masked.
    assert page.locator(".m-membercard-name").inner_text() == "张三丰"
    assert "张*丰" not in content
    assert live_app.id_a not in content
    assert live_app.phone_a not in content
    # Nothing wider than the phone: no sideways scrolling.
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375
    _keep(page, tmp_path, "su-member-mobile.png")
    context.close()
    assert errors == []


def test_org_admin_enrols_totp_and_lands_in_the_console(
    live_app: LiveApp, browser: Browser, tmp_path: Path
) -> None:
    """An org admin's first log-in: password, QR page, code from the secret shown, console."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{live_app.base_url}/login")
    page.fill("input[name=username]", "orgadmin_a")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/login/totp-enrol")
    assert page.locator(".enrol-qr svg").count() == 1
    secret = page.inner_text("[data-totp-secret]").replace(" ", "").strip()
    assert len(secret) == 32
    _keep(page, tmp_path, "su-totp-enrol.png")

    page.fill("input[name=code]", pyotp.TOTP(secret).now())
    page.click(".enrol-form button[type=submit]")
    page.wait_for_url("**/console")
    assert "组织架构" in page.content()
    # The enrol cookie is gone; the session cookie is HttpOnly (not visible to scripts).
    names = {c["name"] for c in context.cookies()}
    assert "su_enrol" not in names
    assert "su_session" in names
    assert page.evaluate("document.cookie").find("su_session") == -1

    # The org admin approves exports: the page they will use next.
    page.click(".sidenav >> text=导出")
    page.wait_for_url("**/console/exports")
    assert "待我审批" in page.content()
    assert "a1b2c3d4e5f60718" in page.content()
    _keep(page, tmp_path, "su-console-exports.png")
    context.close()
    assert errors == []


def test_api_docs_page_lists_the_operations(live_app: LiveApp, browser: Browser) -> None:
    """/docs draws Swagger UI from the package's own files (no CDN) under the strict CSP."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{live_app.base_url}/docs")
    page.wait_for_selector(".opblock", timeout=15_000)
    operations = page.locator(".opblock-summary-path").all_inner_texts()
    assert "/api/v1/auth/token" in operations
    assert "/api/v1/members" in operations
    assert len(operations) > 20
    context.close()
    assert errors == []


def test_unknown_console_address_shows_a_styled_404(
    live_app: LiveApp, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="zh-CN")
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{live_app.base_url}/login")
    page.fill("input[name=username]", "staff_a")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console")
    response = page.goto(f"{live_app.base_url}/console/no-such-page")
    assert response is not None
    assert response.status == 404
    assert page.locator("h1", has_text="页面不存在").count() == 1
    assert page.locator(".sidenav").count() == 1  # the console's look, with its navigation
    # The stylesheet applied: the error card is laid out, not raw text.
    assert page.evaluate("getComputedStyle(document.body).margin") == "0px"
    _keep(page, tmp_path, "su-console-404.png")
    page.click("text=返回工作台")
    page.wait_for_url("**/console")
    context.close()
    # Chromium reports the document's own 404 as a console error; nothing else may appear.
    assert [e for e in errors if "status of 404" not in e] == []


def test_auditor_filters_the_trail_from_a_list(
    live_app: LiveApp, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{live_app.base_url}/login")
    page.fill("input[name=username]", "auditor")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/audit")
    # Every row names its action in words; details are a list of labelled values.
    assert page.locator("td.details code").count() == 0
    page.select_option("select[name=action]", "auth.login")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**action=auth.login**")
    rows = page.locator(".table-audit tbody tr")
    assert rows.count() >= 1
    assert all("登录" in text for text in rows.all_inner_texts())
    _keep(page, tmp_path, "su-console-audit.png")
    context.close()
    assert errors == []


def test_member_reads_and_prints_their_data(
    live_app: LiveApp, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(
        viewport={"width": 375, "height": 812}, is_mobile=True, has_touch=True, locale="zh-CN"
    )
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{live_app.base_url}/m/login")
    page.fill("input[name=username]", "member_a")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/m/")
    page.goto(f"{live_app.base_url}/m/privacy")
    page.click("button[name=view][value=page]")
    page.wait_for_selector("h1:has-text('我的个人信息')")
    assert live_app.id_a in page.content()
    assert page.locator(".m-list dt", has_text="公民身份号码").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    _keep(page, tmp_path, "su-member-data.png")
    # Printed: no header, footer or buttons; the data stays.
    page.emulate_media(media="print")
    assert not page.locator(".m-header").is_visible()
    assert not page.locator("[data-print]").is_visible()
    assert page.locator(".m-list").first.is_visible()
    context.close()
    assert errors == []


def test_staff_filter_sort_and_jump_in_the_member_list(
    live_app: LiveApp, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{live_app.base_url}/login")
    page.fill("input[name=username]", "staff_a")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console")
    # Key figures of the scope; the live world is small, so each is under k and hidden.
    assert page.locator("[data-figure]").count() == 4
    _keep(page, tmp_path, "su-console-figures.png")
    page.goto(f"{live_app.base_url}/console/members")
    page.select_option("select[name=gender]", "M")
    page.select_option("select[name=industry]", "B")
    page.select_option("select[name=sort]", "join_desc")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**gender=M**")
    assert "industry=B" in page.url
    assert "sort=join_desc" in page.url
    assert page.locator("tr[data-href]", has_text="张*丰").count() == 1
    page.select_option("select[name=gender]", "F")
    page.click(".filters button[type=submit]")
    page.wait_for_url("**gender=F**")
    assert page.locator("tr[data-href]").count() == 0
    _keep(page, tmp_path, "su-console-member-filters.png")
    context.close()
    assert errors == []


def test_staff_register_a_member_and_are_told_what_is_wrong(
    live_app: LiveApp, browser: Browser, tmp_path: Path
) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{live_app.base_url}/login")
    page.fill("input[name=username]", "staff_a")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console")
    page.goto(f"{live_app.base_url}/console/members")
    page.click("text=登记会员")
    page.wait_for_url("**/console/members/new")
    page.fill("input[name=name]", "钱七")
    page.fill("input[name=id_number]", "140105199001011230")  # a wrong check digit
    page.fill("input[name=occupation]", "焊工")
    page.click(".member-form button[type=submit]")
    page.wait_for_selector(".field-error")
    assert "请填写有效的 18 位公民身份号码" in page.inner_text("#err-id_number")
    assert page.input_value("input[name=name]") == "钱七"  # what was typed stays
    _keep(page, tmp_path, "su-console-member-new-error.png")
    page.fill("input[name=id_number]", "140105199001011238")
    page.click(".member-form button[type=submit]")
    page.wait_for_url("**saved=created")
    assert "会员已登记" in page.content()
    assert "钱*" in page.content()
    context.close()
    assert [e for e in errors if "status of 4" not in e] == []


def test_auditor_sees_the_accounts_read_only(live_app: LiveApp, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    page = context.new_page()
    errors = _collect_errors(page)
    page.goto(f"{live_app.base_url}/login")
    page.fill("input[name=username]", "auditor")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/console/audit")
    page.click(".sidenav >> text=用户管理")
    page.wait_for_url("**/console/users")
    assert page.locator("tr[data-user=staff_a]").count() == 1
    assert page.locator("form[action^='/console/users']").count() == 0  # no USER_MANAGE
    context.close()
    assert errors == []
