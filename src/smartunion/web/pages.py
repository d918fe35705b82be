"""Staff console (``/console``) and member portal (``/m/``): server-rendered Jinja2 pages.

Pages call the same service functions as the JSON API, so scope, masking and audit are
the services' business, not the templates'. What this module adds:

* log-in/out with a cookie session (HttpOnly, SameSite=Lax, Secure when configured); a
  log-in always starts a *new* session and revokes the one the browser came with, so a
  planted session id is worthless (session fixation);
* TOTP for the roles that need it: first log-in goes through an enrolment page on its own
  short-lived session kind; afterwards the code travels with the password (see the TOTP
  section below for why there is no separate code step);
* a signed double-submit CSRF token on every form (``deps.csrf_token``);
* language from the ``lang`` cookie, else ``Settings.language``;
* HTML error pages: :class:`PageRoute` turns NotFound / PermissionDenied / Conflict / bad
  input raised by a page into a 404 / 403 / 409 / 400 page in the console's look, while the
  app-level handlers keep answering JSON for the API.

The security, export, statistics and privacy pages live in ``pages_audit``,
``pages_exports``, ``pages_stats`` and ``pages_privacy`` and register on this module's
router (imported at the end of this file).

Pages are fully usable without JavaScript (strict CSP: no inline script or style);
``static/js/app.js`` only expands the organisation tree in place and makes table rows
clickable.

A few display-only look-ups go to repositories directly (names of organisations and
employers on a page of members, an enterprise's departments, the caller's display name):
each is keyed by ids that a scoped service call has just returned, so it shows nothing the
caller could not already see. A service-level helper for them would be tidier.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Form, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from pydantic import ValidationError
from sqlalchemy.orm import Session

from smartunion import __version__, i18n
from smartunion.config import Settings
from smartunion.errors import Conflict, InvalidInput, KeepsTransaction, NotFound, TooManyRequests
from smartunion.members import repository as member_repo
from smartunion.members import schemas as member_schemas
from smartunion.members import service as members
from smartunion.members.models import EmploymentForm, MemberStatus
from smartunion.orgs import repository as org_repo
from smartunion.orgs import schemas as org_schemas
from smartunion.orgs import service as orgs
from smartunion.reference import regions
from smartunion.security import service as identity
from smartunion.security import totp
from smartunion.security.guard import AccessSuspended, QuotaExceeded
from smartunion.security.models import TOTP_SECRET, User
from smartunion.security.permissions import Permission, Role
from smartunion.security.principal import PermissionDenied, Principal
from smartunion.stats.privacy import BudgetExhausted
from smartunion.web import deps
from smartunion.web.deps import (
    CSRF_COOKIE,
    SESSION_COOKIE,
    ClientIp,
    Crypto,
    DbSession,
    LoginRequired,
    MemberPage,
    StaffPage,
    State,
)
from smartunion.web.state import AppState

LANG_COOKIE = "lang"
PAGE_SIZES = (20, 50, 100)
MAX_OPEN_NODES = 50  # expanded tree nodes carried in the URL
# Ids are INTEGER columns: a larger number would overflow the driver (a 500), not miss.
MAX_ID = 2**31 - 1
REVEALABLE = ("id_number", "phone", "name", "birth_date")

LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # times on pages are Beijing time, stored in UTC


def local_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A stored (UTC) time as Beijing wall-clock time; "—" for none."""
    if value is None:
        return "—"
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(LOCAL_TZ).strftime(fmt)


def compact_json(value: Any) -> str:
    """Audit details and the like on one line, Chinese kept readable."""
    if not value:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.globals.update(version=__version__, Permission=Permission, Role=Role)
templates.env.filters.update(local_time=local_time, compact_json=compact_json)

E = TypeVar("E", bound=StrEnum)
RecordId = Annotated[int, PathParam(ge=1, le=MAX_ID)]


class PageError(Exception):
    """A refusal a page shows as such (CSRF failure, bad form): status and message key."""

    def __init__(self, status_code: int, message_key: str) -> None:
        super().__init__(message_key)
        self.status_code = status_code
        self.message_key = message_key


# ---------------------------------------------------------------------------------------
# Request context: language, CSRF, the caller


def safe_next(value: str | None, default: str) -> str:
    """``value`` if it is a path on this site, else ``default`` (no open redirect).

    Refuses ``//host`` and anything with a backslash (browsers read ``/\\host`` as
    ``//host``), a scheme, a host or control characters.
    """
    if not value or not value.startswith("/") or value.startswith("//"):
        return default
    if "\\" in value or any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        return default
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return default
    return value


def _language(request: Request, settings: Settings) -> str:
    return i18n.normalise(request.cookies.get(LANG_COOKIE)) or settings.language


@dataclass
class Page:
    """What every page template gets: language, CSRF token and (once logged in) the caller."""

    request: Request
    state: AppState
    lang: str
    t: i18n.Translator
    csrf_cookie: str
    csrf_cookie_is_new: bool
    principal: Principal | None = None
    user_name: str = ""
    org_name: str = ""
    portal: str = "console"

    @property
    def csrf(self) -> str:
        return deps.csrf_token(self.state, deps.csrf_binding(self.request, self.csrf_cookie))

    def can(self, permission: Permission) -> bool:
        return self.principal is not None and self.principal.can(permission)

    def check_csrf(self, submitted: str | None) -> None:
        # The token is bound to the session (or, before log-in, to su_csrf): deps checks.
        if not submitted:
            raise PageError(403, "error.csrf")
        try:
            deps.check_csrf(self.request, self.state, submitted)
        except HTTPException as exc:  # deps answers a bare 403; show our own page
            raise PageError(403, "error.csrf") from exc

    def render(self, template: str, *, status_code: int = 200, **context: Any) -> HTMLResponse:
        response = templates.TemplateResponse(
            self.request,
            template,
            {"page": self, "t": self.t, "lang": self.lang, "csrf": self.csrf, **context},
            status_code=status_code,
        )
        if self.csrf_cookie_is_new:
            set_csrf_cookie(response, self.state.settings, self.csrf_cookie)
        return response


def set_csrf_cookie(response: Response, settings: Settings, value: str) -> None:
    # HttpOnly: the token the form carries is rendered by the server; no script reads it.
    response.set_cookie(
        CSRF_COOKIE,
        value,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )


def _new_page(request: Request, state: AppState) -> Page:
    lang = _language(request, state.settings)
    cookie = request.cookies.get(CSRF_COOKIE, "")
    is_new = not (16 <= len(cookie) <= 128)
    if is_new:
        cookie = secrets.token_urlsafe(32)
    portal = "member" if request.url.path.startswith("/m/") else "console"
    page = Page(request, state, lang, i18n.translator(lang), cookie, is_new, portal=portal)
    request.state.page = page
    return page


def page_context(request: Request, state: State) -> Page:
    return _new_page(request, state)


AnyPage = Annotated[Page, Depends(page_context)]


def _remember_session(request: Request, session: Session) -> None:
    # PageRoute rolls this session back when it turns an exception into an error page.
    request.state.db = session


def console_context(
    request: Request, page: AnyPage, principal: StaffPage, session: DbSession
) -> Page:
    _remember_session(request, session)
    page.principal = principal
    user = session.get(User, principal.user_id)
    page.user_name = user.display_name if user else principal.username
    try:
        page.org_name = orgs.get_org(session, principal, principal.org_id).name
    except (NotFound, PermissionDenied):
        page.org_name = ""
    return page


def portal_context(
    request: Request, page: AnyPage, principal: MemberPage, session: DbSession
) -> Page:
    _remember_session(request, session)
    page.principal = principal
    page.user_name = principal.username
    return page


ConsolePage = Annotated[Page, Depends(console_context)]
PortalPage = Annotated[Page, Depends(portal_context)]


def _caller(page: Page) -> Principal:
    """The logged-in caller of a console or portal page (set by its context dependency)."""
    if page.principal is None:
        raise LoginRequired(page.request.url.path, portal=page.portal)
    return page.principal


# ---------------------------------------------------------------------------------------
# Error pages


_ERRORS: dict[int, tuple[str, str]] = {
    400: ("error.400.title", "error.400.body"),
    403: ("error.403.title", "error.403.body"),
    404: ("error.404.title", "error.404.body"),
    409: ("error.409.title", "error.409.body"),
    429: ("error.429.title", "error.429.body"),
}


def error_page(
    request: Request, status_code: int, message_key: str | None = None, **context: Any
) -> Response:
    page: Page | None = getattr(request.state, "page", None)
    if page is None:
        page = _new_page(request, request.app.state.smartunion)
    title_key, body_key = _ERRORS.get(status_code, ("error.400.title", "error.400.body"))
    if page.principal is not None and page.principal.role is not Role.MEMBER:
        layout = "console/layout.html"
    elif page.principal is not None or page.portal == "member":
        layout = "portal/layout.html"
    else:
        layout = "bare.html"
    return page.render(
        "error.html",
        status_code=status_code,
        layout=layout,
        title_key=title_key,
        message_key=message_key or body_key,
        status=status_code,
        **context,
    )


class PageRoute(APIRoute):
    """Turns domain refusals raised by a page into HTML error pages.

    The app's exception handlers answer JSON, which the API needs; pages catch the same
    exceptions here (FastAPI's documented custom-route hook). Because the request's
    session dependency then sees a normal return, the session is rolled back here first —
    except for ``KeepsTransaction`` errors, whose audit events must be kept.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except LoginRequired:
                raise
            except deps.CrossSiteRequest as exc:
                # Nothing was read or charged; the user may go on from this site's own page.
                await _rollback(request, exc)
                return error_page(
                    request,
                    403,
                    "error.cross_site",
                    continue_url=safe_next(exc.url, "/console"),
                )
            except NotFound as exc:
                await _rollback(request, exc)
                return error_page(request, 404)
            except PermissionDenied as exc:
                await _rollback(request, exc)
                return error_page(request, 403)
            except AccessSuspended as exc:
                # The insider-leak guard stopped this account; its alert is kept.
                await _rollback(request, exc)
                return error_page(request, 403, "error.suspended")
            except QuotaExceeded as exc:
                await _rollback(request, exc)
                return error_page(request, 429, "error.quota")
            except (TooManyRequests, BudgetExhausted) as exc:
                await _rollback(request, exc)
                return error_page(request, 429)
            except Conflict as exc:
                # e.g. a second click on "approve", or an export downloaded already.
                await _rollback(request, exc)
                return error_page(request, 409)
            except InvalidInput as exc:
                await _rollback(request, exc)
                return error_page(request, 400)
            except PageError as exc:
                await _rollback(request, exc)
                return error_page(request, exc.status_code, exc.message_key)
            except RequestValidationError as exc:
                await _rollback(request, exc)
                return error_page(request, 400)

        return route


async def _rollback(request: Request, exc: Exception) -> None:
    session: Session | None = getattr(request.state, "db", None)
    if session is not None and not isinstance(exc, KeepsTransaction):
        await run_in_threadpool(session.rollback)


router = APIRouter(include_in_schema=False, route_class=PageRoute)


# ---------------------------------------------------------------------------------------
# Small parsing helpers: HTML forms send "" for an unset field, which typed query
# parameters would turn into a 422; pages treat "" (and junk) as "no filter".


def _opt_int(value: str | None) -> int | None:
    value = (value or "").strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 10):
        return None
    n = int(value)
    return n if n <= MAX_ID else None


def _opt_enum(cls: type[E], value: str | None) -> E | None:
    try:
        return cls(value) if value else None
    except ValueError:
        return None


def _page_no(value: str | None) -> int:
    n = _opt_int(value)
    return min(max(n or 1, 1), 100_000)


def _page_size(value: str | None) -> int:
    n = _opt_int(value)
    return n if n in PAGE_SIZES else PAGE_SIZES[0]


def _query(base: str, params: dict[str, Any]) -> str:
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return f"{base}?{urlencode(kept, doseq=True)}" if kept else base


@dataclass(frozen=True)
class Pager:
    """Numbers and links for a paginated list."""

    base: str
    params: dict[str, Any]
    page: int
    size: int
    total: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.size))

    def url(self, page: int) -> str:
        return _query(self.base, {**self.params, "page": page, "size": self.size})

    @property
    def window(self) -> list[int]:
        lo, hi = max(1, self.page - 2), min(self.pages, self.page + 2)
        return list(range(lo, hi + 1))

    @property
    def first_item(self) -> int:
        return 0 if self.total == 0 else (self.page - 1) * self.size + 1

    @property
    def last_item(self) -> int:
        return min(self.total, self.page * self.size)


def _region_name(code: str) -> str:
    found = regions.region(code)
    return found.name if found else ""


def _years_since(day: dt.date, today: dt.date | None = None) -> int:
    today = today or dt.date.today()
    return today.year - day.year - ((today.month, today.day) < (day.month, day.day))


# ---------------------------------------------------------------------------------------
# Language


@router.get("/lang/{code}")
def set_language(
    code: str,
    state: State,
    next_url: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    lang = i18n.normalise(code)
    if lang is None:
        raise NotFound("language")
    response = RedirectResponse(safe_next(next_url, "/"), status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=state.settings.cookie_secure,
        path="/",
    )
    return response


# ---------------------------------------------------------------------------------------
# Log-in and log-out (shared by the console and the portal)


@dataclass(frozen=True)
class LoginForm:
    username: str
    password: str
    otp: str
    next: str
    csrf_token: str


def login_form(
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    otp: Annotated[str, Form(max_length=8)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> LoginForm:
    return LoginForm(username.strip(), password, otp.strip(), next_url, csrf_token)


LoginFormDep = Annotated[LoginForm, Depends(login_form)]


def _login_page(
    page: Page,
    *,
    template: str,
    next_url: str,
    status_code: int = 200,
    error: str | None = None,
    error_params: dict[str, str] | None = None,
    username: str = "",
    ask_otp: bool = False,
) -> HTMLResponse:
    # The password is never rendered back, not even after a wrong OTP.
    return page.render(
        template,
        status_code=status_code,
        next_url=next_url,
        error=error,
        error_params=error_params or {},
        username=username,
        ask_otp=ask_otp,
    )


def _start_session(
    page: Page, session: Session, user: User, ip: str, target: str
) -> RedirectResponse:
    settings = page.state.settings
    old = page.request.cookies.get(SESSION_COOKIE)
    if old:
        # Whatever session the browser arrived with ends here: no session fixation.
        identity.revoke_session(session, old)
    token = identity.open_session(
        session,
        user,
        kind="cookie",
        lifetime=dt.timedelta(seconds=settings.session_max_age_seconds),
        client_ip=ip,
    )
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.session_max_age_seconds,
        httponly=True,
        samesite="lax",
        secure=settings.cookie_secure,
        path="/",
    )
    # A fresh CSRF secret for the new session, too.
    set_csrf_cookie(response, settings, secrets.token_urlsafe(32))
    return response


def _authenticate(
    page: Page,
    session: Session,
    form: LoginForm,
    ip: str,
    template: str,
    next_url: str,
    *,
    enrol_here: bool = False,
) -> User | Response:
    """The user, or the login page again with a message (never saying what was wrong).

    With ``enrol_here`` (the console), an account whose role needs TOTP but has none is
    sent to the enrolment page instead of being turned away.
    """
    state = page.state
    if not state.login_limiter.hit("login", ip):
        return _login_page(
            page,
            template=template,
            next_url=next_url,
            status_code=429,
            error="login.error.rate",
            username=form.username,
        )
    if not form.username or not form.password:
        return _login_page(
            page,
            template=template,
            next_url=next_url,
            status_code=401,
            error="login.error.failed",
            username=form.username,
        )
    try:
        return identity.authenticate(
            session,
            form.username,
            form.password,
            otp=form.otp or None,
            crypto=state.crypto,
            totp_roles=state.settings.totp_roles,
            client_ip=ip,
        )
    except identity.AuthenticationFailed:
        # Caught here, so the handler returns normally and the failure's audit event commits.
        return _login_page(
            page,
            template=template,
            next_url=next_url,
            status_code=401,
            error="login.error.failed",
            username=form.username,
            ask_otp=bool(form.otp),
        )
    except identity.AccountSuspended as exc:
        # Only after the right credentials: the owner learns why, and whom to ask.
        return _login_page(
            page,
            template=template,
            next_url=next_url,
            status_code=403,
            error="login.error.suspended",
            error_params={
                "org": exc.contact.org_name,
                "officers": "、".join(exc.contact.officers) or "—",
            },
            username=form.username,
        )
    except identity.SecondFactorRequired:
        return _login_page(
            page,
            template=template,
            next_url=next_url,
            status_code=401,
            error="login.error.otp",
            username=form.username,
            ask_otp=True,
        )
    except identity.EnrolmentRequired as exc:
        if enrol_here:
            return _begin_enrolment(page, session, exc.user, ip, next_url)
        return _login_page(
            page,
            template=template,
            next_url=next_url,
            status_code=403,
            error="login.error.enrol",
            username=form.username,
        )


def _end_session(page: Page, session: Session, target: str) -> RedirectResponse:
    token = page.request.cookies.get(SESSION_COOKIE)
    if token:
        identity.revoke_session(session, token)
    response = RedirectResponse(target, status_code=303)
    response.delete_cookie(
        SESSION_COOKIE,
        path="/",
        httponly=True,
        samesite="lax",
        secure=page.state.settings.cookie_secure,
    )
    return response


# Where each role starts when the log-in form names no page: their daily work.
ROLE_HOME: dict[Role, str] = {
    Role.ANALYST: "/console/stats",
    Role.AUDITOR: "/console/audit",
    Role.SECURITY_OFFICER: "/console/security/alerts",
}


def _home(user: User, next_url: str) -> str:
    if user.role is Role.MEMBER:
        return "/m/"  # a member who used the staff form still gets in — to the portal
    return next_url or ROLE_HOME.get(user.role, "/console")


@router.get("/login")
def login_page(
    page: AnyPage,
    next_url: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    return _login_page(page, template="console/login.html", next_url=safe_next(next_url, ""))


@router.post("/login")
def login_submit(page: AnyPage, session: DbSession, ip: ClientIp, form: LoginFormDep) -> Response:
    _remember_session(page.request, session)
    page.check_csrf(form.csrf_token)
    next_url = safe_next(form.next, "")
    result = _authenticate(page, session, form, ip, "console/login.html", next_url, enrol_here=True)
    if isinstance(result, Response):
        return result
    return _start_session(page, session, result, ip, _home(result, next_url))


@router.post("/logout")
def logout(page: AnyPage, session: DbSession, csrf_token: Annotated[str, Form()] = "") -> Response:
    _remember_session(page.request, session)
    page.check_csrf(csrf_token)
    return _end_session(page, session, "/login")


# ---------------------------------------------------------------------------------------
# TOTP enrolment (system and org admins must use a second factor)
#
# A correct password for an account that must have TOTP but has none opens a short
# "enrol" session: its own cookie, its own session kind, valid for ten minutes and for
# this one page only (the cookie's Path, and resolve_session(kind="enrol") everywhere
# else refusing it). The page shows the secret as a QR code and as text; a correct code
# from the authenticator app activates it, ends the enrol session and opens the normal
# one. The code used here is spent: the service refuses it again (replay).
#
# The second factor of an enrolled account stays on the log-in form itself (one POST with
# password and code): a separate "/login/otp" step would need a service that finishes a
# half-done log-in (check the code, reset the failure count, record the log-in), and
# authenticate() only takes password and code together. Re-implementing that bookkeeping
# in a page, or keeping the password between two requests, would both be worse.

ENROL_COOKIE = "su_enrol"
ENROL_PATH = "/login/totp-enrol"
ENROL_LIFETIME = dt.timedelta(minutes=10)
OTP_MAX_LENGTH = 8


def _begin_enrolment(
    page: Page, session: Session, user: User, ip: str, next_url: str
) -> RedirectResponse:
    settings = page.state.settings
    # A fresh secret per password check: an abandoned attempt's secret is useless.
    identity.begin_totp_enrolment(session, user, page.state.crypto)
    token = identity.open_session(
        session, user, kind="enrol", lifetime=ENROL_LIFETIME, client_ip=ip
    )
    response = RedirectResponse(_query(ENROL_PATH, {"next": next_url}), status_code=303)
    response.set_cookie(
        ENROL_COOKIE,
        token,
        max_age=int(ENROL_LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=settings.cookie_secure,
        path=ENROL_PATH,  # the browser sends it to the enrolment page and nowhere else
    )
    return response


def _enrolling_user(page: Page, session: Session) -> tuple[str, User] | None:
    """The enrol session's token and user, or None (none, expired, or enrolled already)."""
    token = page.request.cookies.get(ENROL_COOKIE)
    if not token:
        return None
    principal = identity.resolve_session(session, token, kind="enrol")
    if principal is None:
        return None
    user = session.get(User, principal.user_id)
    if user is None or user.totp_enabled:
        return None
    return token, user


def _pending_secret(page: Page, session: Session, user: User) -> str:
    """The not-yet-active secret begin_totp_enrolment stored, to show it again on reload.

    Decrypted here because the service has no "show the pending secret" call; only the
    holder of this user's enrol session reaches this.
    """
    if user.totp_secret_enc is None:  # reset by an administrator meanwhile
        return identity.begin_totp_enrolment(session, user, page.state.crypto)
    return page.state.crypto.decrypt(user.totp_secret_enc, TOTP_SECRET.name)


def _no_store(response: Response) -> Response:
    # Not under /console, so the app's no-store header does not cover it; the secret
    # must not stay in a browser or proxy cache.
    response.headers["Cache-Control"] = "no-store"
    return response


def _enrol_page(
    page: Page,
    session: Session,
    user: User,
    next_url: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    secret = _pending_secret(page, session, user)
    uri = totp.provisioning_uri(secret, user.username)
    return _no_store(
        page.render(
            "console/totp_enrol.html",
            status_code=status_code,
            # Drawn locally by segno from our own URI: trusted markup, no image request.
            qr_svg=Markup(totp.qr_svg(uri)),  # noqa: S704  # nosec B704
            secret_groups=[secret[i : i + 4] for i in range(0, len(secret), 4)],
            issuer=totp.ISSUER,
            username=user.username,
            next_url=next_url,
            error=error,
        )
    )


def _enrol_expired() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(ENROL_COOKIE, path=ENROL_PATH, httponly=True, samesite="strict")
    return response


@router.get(ENROL_PATH)
def totp_enrol_page(
    page: AnyPage,
    session: DbSession,
    next_url: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    _remember_session(page.request, session)
    found = _enrolling_user(page, session)
    if found is None:
        return _enrol_expired()
    return _enrol_page(page, session, found[1], safe_next(next_url, ""))


@router.post(ENROL_PATH)
def totp_enrol_submit(
    page: AnyPage,
    session: DbSession,
    ip: ClientIp,
    code: Annotated[str, Form(max_length=OTP_MAX_LENGTH)] = "",
    next_url: Annotated[str, Form(alias="next", max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    _remember_session(page.request, session)
    page.check_csrf(csrf_token)
    next_url = safe_next(next_url, "")
    found = _enrolling_user(page, session)
    if found is None:
        return _enrol_expired()
    token, user = found
    # Same budget as the log-in form: six digits must not be guessable at leisure.
    if not page.state.login_limiter.hit("login", ip):
        return _enrol_page(page, session, user, next_url, error="login.error.rate", status_code=429)
    if not identity.confirm_totp_enrolment(
        session, user, page.state.crypto, code.strip(), client_ip=ip
    ):
        # The failure is audited by the service; the handler returns normally so it commits.
        return _enrol_page(page, session, user, next_url, error="enrol.error.code", status_code=400)
    identity.revoke_session(session, token)
    response = _start_session(page, session, user, ip, _home(user, next_url))
    response.delete_cookie(ENROL_COOKIE, path=ENROL_PATH, httponly=True, samesite="strict")
    return _no_store(response)


# ---------------------------------------------------------------------------------------
# Console: dashboard and organisation tree


@dataclass
class TreeNode:
    org: org_schemas.OrgNode
    toggle_url: str
    children: list[TreeNode] | None = None  # None: collapsed

    @property
    def expanded(self) -> bool:
        return self.children is not None


def _tree(
    session: Session,
    principal: Principal,
    nodes: Sequence[org_schemas.OrgNode],
    open_ids: frozenset[int],
    depth: int = 0,
) -> list[TreeNode]:
    out = []
    for node in nodes:
        is_open = node.id in open_ids and node.child_count > 0
        toggled = open_ids - {node.id} if is_open else open_ids | {node.id}
        tree_node = TreeNode(node, _query("/console", {"open": sorted(toggled)}))
        if is_open and depth < 8:
            children = orgs.tree_level(session, principal, node.id)
            tree_node.children = _tree(session, principal, children, open_ids, depth + 1)
        out.append(tree_node)
    return out


def _open_ids(values: Iterable[str]) -> frozenset[int]:
    ids = (_opt_int(v) for v in values)
    return frozenset(list(i for i in ids if i is not None)[:MAX_OPEN_NODES])


@router.get("/console")
def dashboard(
    page: ConsolePage,
    session: DbSession,
    open_nodes: Annotated[list[str] | None, Query(alias="open")] = None,
) -> Response:
    principal = _caller(page)
    roots = orgs.tree_level(session, principal, None)
    # The caller's own organisation starts expanded: its children are what they manage.
    open_ids = _open_ids(open_nodes) if open_nodes is not None else frozenset(r.id for r in roots)
    tree = _tree(session, principal, roots, open_ids)
    return page.render("console/dashboard.html", tree=tree, nav="home")


def _breadcrumb(session: Session, principal: Principal, org_path: str) -> list[tuple[int, str]]:
    """Ancestors of an organisation that lie within the caller's scope, top down."""
    crumbs = []
    for part in org_path.strip("/").split("/")[:-1]:
        org_id = _opt_int(part)
        if org_id is None:
            continue
        try:
            crumbs.append((org_id, orgs.get_org(session, principal, org_id).name))
        except NotFound:
            continue  # above the caller's scope: not shown, not linked
    return crumbs


@router.get("/console/orgs/{org_id}")
def org_detail(org_id: RecordId, page: ConsolePage, session: DbSession) -> Response:
    principal = _caller(page)
    org = orgs.get_org(session, principal, org_id)
    children = orgs.tree_level(session, principal, org.id)
    enterprises: Sequence[org_schemas.Enterprise] = []
    enterprise_total = 0
    if principal.can(Permission.ENTERPRISE_READ):
        rows, enterprise_total = orgs.list_enterprises(session, principal, org_id=org.id, size=20)
        enterprises = [orgs.enterprise_out(e) for e in rows]
    parent_name = ""
    if org.parent_id is not None:
        try:
            parent_name = orgs.get_org(session, principal, org.parent_id).name
        except NotFound:
            parent_name = ""
    return page.render(
        "console/org.html",
        org=org_schemas.Org.model_validate(org),
        region_name=_region_name(org.region_code),
        parent_name=parent_name,
        breadcrumb=_breadcrumb(session, principal, org.path),
        children=children,
        enterprises=enterprises,
        enterprise_total=enterprise_total,
        nav="orgs",
    )


@router.get("/console/orgs/{org_id}/children")
def org_children(org_id: RecordId, page: ConsolePage, session: DbSession) -> Response:
    """One level of the tree as an HTML fragment, for app.js to insert in place."""
    children = orgs.tree_level(session, _caller(page), org_id)
    nodes = [TreeNode(c, f"/console/orgs/{c.id}") for c in children]
    return page.render("console/_tree.html", nodes=nodes)


# ---------------------------------------------------------------------------------------
# Console: members


def _member_rows(
    session: Session, items: Sequence[member_schemas.MemberListItem]
) -> list[dict[str, Any]]:
    # Names of the organisations and employers on the page; the ids came from a scoped
    # query, so looking their names up is no wider than what the caller already sees.
    org_names, ent_names = member_repo.names_for(
        session,
        {m.org_id for m in items},
        {m.enterprise_id for m in items if m.enterprise_id is not None},
    )
    return [
        {
            "item": m,
            "birth_year": m.birth_date[:4],
            "org_name": org_names.get(m.org_id, ""),
            "enterprise_name": ent_names.get(m.enterprise_id, "") if m.enterprise_id else "",
        }
        for m in items
    ]


@dataclass(frozen=True)
class MemberFilters:
    q: str
    org_id: int | None
    enterprise_id: int | None
    employment_form: EmploymentForm | None
    status: MemberStatus | None
    page: int
    size: int

    def params(self) -> dict[str, Any]:
        return {
            "q": self.q,
            "org_id": self.org_id,
            "enterprise_id": self.enterprise_id,
            "employment_form": self.employment_form.value if self.employment_form else None,
            "status": self.status.value if self.status else None,
        }


def member_filters(
    q: Annotated[str, Query(max_length=60)] = "",
    org_id: str = "",
    enterprise_id: str = "",
    employment_form: str = "",
    status: str = "",
    page: str = "",
    size: str = "",
) -> MemberFilters:
    return MemberFilters(
        q=q.strip(),
        org_id=_opt_int(org_id),
        enterprise_id=_opt_int(enterprise_id),
        employment_form=_opt_enum(EmploymentForm, employment_form),
        status=_opt_enum(MemberStatus, status),
        page=_page_no(page),
        size=_page_size(size),
    )


def _members_page(
    page: Page,
    session: Session,
    ip: str,
    filters: MemberFilters,
    *,
    lookup_rows: list[dict[str, Any]] | None = None,
    lookup_error: str | None = None,
    lookup_kind: str = "id_number",
    export_error: str | None = None,
    export_reason: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    principal = _caller(page)
    items, total = members.list_members(
        session,
        principal,
        page.state.crypto,
        q=filters.q or None,
        org_id=filters.org_id,
        enterprise_id=filters.enterprise_id,
        employment_form=filters.employment_form,
        status=filters.status,
        page=filters.page,
        size=filters.size,
        client_ip=ip,
    )
    org_name = orgs.get_org(session, principal, filters.org_id).name if filters.org_id else ""
    ent_name = ""
    if filters.enterprise_id and principal.can(Permission.ENTERPRISE_READ):
        ent_name = orgs.get_enterprise(session, principal, filters.enterprise_id).name
    params = filters.params()
    return page.render(
        "console/members.html",
        status_code=status_code,
        rows=_member_rows(session, items),
        filters=filters,
        filter_org_name=org_name,
        filter_ent_name=ent_name,
        without=lambda key: _query("/console/members", {**params, key: None}),
        pager=Pager("/console/members", params, filters.page, filters.size, total),
        employment_forms=list(EmploymentForm),
        statuses=list(MemberStatus),
        page_sizes=PAGE_SIZES,
        lookup_rows=lookup_rows,
        lookup_error=lookup_error,
        lookup_kind=lookup_kind,
        export_error=export_error,
        export_reason=export_reason,
        nav="members",
    )


@router.get("/console/members")
def member_list(
    page: ConsolePage,
    session: DbSession,
    ip: ClientIp,
    filters: Annotated[MemberFilters, Depends(member_filters)],
) -> Response:
    return _members_page(page, session, ip, filters)


@router.post("/console/members/lookup")
def member_lookup(
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    ip: ClientIp,
    kind: Annotated[str, Form(max_length=16)] = "id_number",
    value: Annotated[str, Form(max_length=32)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Exact lookup in a POST body: the number never reaches a URL, a log or the page."""
    page.check_csrf(csrf_token)
    principal = _caller(page)
    kind = "phone" if kind == "phone" else "id_number"
    value = value.strip()
    rows: list[dict[str, Any]] | None = None
    error: str | None = None
    if not value:
        error = "lookup.error.empty"
    else:
        try:
            request = member_schemas.LookupRequest.model_validate({kind: value})
            found = members.lookup(session, principal, crypto, request, client_ip=ip)
            rows = _member_rows(session, found)
        except (InvalidInput, ValidationError):
            error = f"lookup.error.{kind}"
    filters = member_filters()
    return _members_page(
        page,
        session,
        ip,
        filters,
        lookup_rows=rows,
        lookup_error=error,
        lookup_kind=kind,
        status_code=422 if error else 200,
    )


def _member_page(
    page: Page,
    session: Session,
    member: member_schemas.Member,
    *,
    revealed: dict[str, str | None] | None = None,
    reveal_error: str | None = None,
    reason: str = "",
    chosen: Sequence[str] = ("id_number", "phone"),
    status_code: int = 200,
) -> HTMLResponse:
    department = ""
    if member.department_id is not None:
        # The member was read through the scoped service; its department comes with it.
        dept = org_repo.get_department(session, member.department_id)
        department = dept.name if dept else ""
    return page.render(
        "console/member.html",
        status_code=status_code,
        m=member,
        department=department,
        member_years=_years_since(member.join_date),
        revealed=revealed,
        reveal_error=reveal_error,
        reason=reason,
        chosen=set(chosen),
        revealable=REVEALABLE,
        nav="members",
    )


@router.get("/console/members/{member_id}")
def member_detail(
    member_id: RecordId, page: ConsolePage, session: DbSession, crypto: Crypto, ip: ClientIp
) -> Response:
    member = members.get_member(session, _caller(page), crypto, member_id, client_ip=ip)
    return _member_page(page, session, member)


@router.post("/console/members/{member_id}/reveal")
def member_reveal(
    member_id: RecordId,
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    ip: ClientIp,
    reason: Annotated[str, Form(max_length=400)] = "",
    fields: Annotated[list[str] | None, Form()] = None,
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Plaintext once, on this response only: not in a cookie, a URL or a redirect."""
    page.check_csrf(csrf_token)
    principal = _caller(page)
    chosen = [f for f in dict.fromkeys(fields or []) if f in REVEALABLE]
    revealed: dict[str, str | None] | None = None
    error: str | None = None
    status_code = 200
    try:
        request = member_schemas.RevealRequest.model_validate(
            {"reason": reason.strip(), "fields": chosen}
        )
    except ValidationError:
        error = "reveal.error.fields" if not chosen else "reveal.error.reason"
        status_code = 422
    else:
        try:
            result = members.reveal(session, principal, crypto, member_id, request, client_ip=ip)
            revealed = result.fields
        except TooManyRequests:
            error = "reveal.error.rate"
            status_code = 429
    member = members.get_member(session, principal, crypto, member_id, client_ip=ip)
    return _member_page(
        page,
        session,
        member,
        revealed=revealed,
        reveal_error=error,
        reason="" if revealed else reason.strip(),
        chosen=chosen or ("id_number", "phone"),
        status_code=status_code,
    )


# ---------------------------------------------------------------------------------------
# Console: enterprises


@router.get("/console/enterprises")
def enterprise_list(
    page: ConsolePage,
    session: DbSession,
    q: Annotated[str, Query(max_length=60)] = "",
    org_id: str = "",
    page_no: Annotated[str, Query(alias="page")] = "",
    size: str = "",
) -> Response:
    principal = _caller(page)
    n, per_page, org = _page_no(page_no), _page_size(size), _opt_int(org_id)
    q = q.strip()
    rows, total = orgs.list_enterprises(
        session, principal, org_id=org, q=q or None, page=n, size=per_page
    )
    org_names, _ = member_repo.names_for(session, {e.org_id for e in rows}, set())
    params: dict[str, Any] = {"q": q, "org_id": org}
    return page.render(
        "console/enterprises.html",
        rows=[(orgs.enterprise_out(e), org_names.get(e.org_id, "")) for e in rows],
        q=q,
        org_id=org,
        filter_org_name=orgs.get_org(session, principal, org).name if org else "",
        pager=Pager("/console/enterprises", params, n, per_page, total),
        page_sizes=PAGE_SIZES,
        nav="enterprises",
    )


@router.get("/console/enterprises/{ent_id}")
def enterprise_detail(ent_id: RecordId, page: ConsolePage, session: DbSession) -> Response:
    principal = _caller(page)
    ent = orgs.get_enterprise(session, principal, ent_id)
    try:
        org_name = orgs.get_org(session, principal, ent.org_id).name
    except NotFound:
        org_name = ""
    return page.render(
        "console/enterprise.html",
        ent=orgs.enterprise_out(ent),
        region_name=_region_name(ent.region_code),
        org_name=org_name,
        # Departments belong to the enterprise just read through the scoped service.
        departments=org_repo.departments_of(session, ent.id),
        nav="enterprises",
    )


# ---------------------------------------------------------------------------------------
# Member portal (H5)


@router.get("/m/login")
def portal_login_page(
    page: AnyPage,
    next_url: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    return _login_page(page, template="portal/login.html", next_url=safe_next(next_url, ""))


@router.post("/m/login")
def portal_login_submit(
    page: AnyPage, session: DbSession, ip: ClientIp, form: LoginFormDep
) -> Response:
    _remember_session(page.request, session)
    page.check_csrf(form.csrf_token)
    next_url = safe_next(form.next, "")
    result = _authenticate(page, session, form, ip, "portal/login.html", next_url)
    if isinstance(result, Response):
        return result
    if result.role is not Role.MEMBER or result.member_id is None:
        # Staff accounts have their own door (and their own second factor rules).
        return _login_page(
            page,
            template="portal/login.html",
            next_url=next_url,
            status_code=403,
            error="portal.error.staff",
        )
    target = next_url if next_url.startswith("/m/") else "/m/"
    return _start_session(page, session, result, ip, target)


@router.get("/m/")
def portal_home(page: PortalPage, session: DbSession, crypto: Crypto, ip: ClientIp) -> Response:
    me = members.get_self(session, _caller(page), crypto, client_ip=ip)
    return page.render("portal/home.html", m=me, member_years=_years_since(me.join_date))


@router.post("/m/logout")
def portal_logout(
    page: AnyPage, session: DbSession, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    _remember_session(page.request, session)
    page.check_csrf(csrf_token)
    return _end_session(page, session, "/m/login")


# ---------------------------------------------------------------------------------------
# Feature pages in their own modules. They decorate routes onto this module's ``router``
# (same PageRoute error pages, same dependencies), so importing them here registers their
# pages before the app includes the router. Imported last: they import from this module.
# Registering onto one router, rather than including a router of theirs, also works when
# one of them happens to be imported before this module.

from smartunion.web import (  # noqa: E402
    pages_audit,
    pages_exports,
    pages_privacy,
    pages_stats,
)

FEATURE_MODULES = (pages_audit, pages_exports, pages_privacy, pages_stats)
