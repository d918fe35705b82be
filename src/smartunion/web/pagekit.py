"""The page kit: what every console and portal page module builds on.

Pages call the same service functions as the JSON API, so scope, masking and audit are
the services' business, not the templates'. This module holds the shared machinery, all
of it public so that page modules never reach into one another:

* :class:`Page`, the object every template gets (language, CSRF token, the caller), and
  the dependencies that make one: ``AnyPage`` (no log-in needed), ``ConsolePage`` (staff),
  ``PortalPage`` (a member); :func:`caller` for the logged-in principal;
* language from the ``lang`` cookie, else ``Settings.language``; a signed double-submit
  CSRF token on every form (``Page.check_csrf``, ``deps.csrf_token``);
* HTML error pages: :class:`PageRoute` (the route class of :func:`page_router`) turns
  NotFound / PermissionDenied / Conflict / bad input raised by a page into a 404 / 403 /
  409 / 400 page in the console's or portal's look, while the app-level handlers keep
  answering JSON for the API;
* forgiving parsers for query strings and forms (:func:`opt_int`, :func:`opt_enum`,
  :func:`page_number`, :func:`page_size`), :class:`Pager`, :func:`query_url`,
  :func:`breadcrumb`, and display helpers (:func:`local_time`, :func:`region_name`, ...).

Pages are fully usable without JavaScript (strict CSP: no inline script or style);
``static/js/app.js`` only expands the organisation tree in place and makes table rows
clickable.

A few display-only look-ups go to repositories directly (names of organisations and
employers on a page of members, an enterprise's departments, the caller's display name):
each is keyed by ids that a scoped service call has just returned, so it shows nothing the
caller could not already see.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, TypeVar
from urllib.parse import urlencode, urlsplit
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates
from pydantic import ValidationError
from sqlalchemy.orm import Session

from smartunion import __version__, i18n
from smartunion.config import Settings
from smartunion.errors import Conflict, InvalidInput, KeepsTransaction, NotFound, TooManyRequests
from smartunion.orgs import service as orgs
from smartunion.reference import regions
from smartunion.security.guard import AccessSuspended, QuotaExceeded
from smartunion.security.models import User
from smartunion.security.permissions import STAFF_ROLES, Permission, Role
from smartunion.security.principal import PermissionDenied, Principal
from smartunion.stats.privacy import BudgetExhausted
from smartunion.web import deps
from smartunion.web.deps import (
    CSRF_COOKIE,
    DbSession,
    LoginRequired,
    MemberPage,
    StaffPage,
    State,
)
from smartunion.web.state import AppState

LANG_COOKIE = "lang"
PAGE_SIZES = (20, 50, 100)
# Ids are INTEGER columns: a larger number would overflow the driver (a 500), not miss.
MAX_ID = 2**31 - 1

LOCAL_TZ = ZoneInfo("Asia/Shanghai")  # times on pages are Beijing time, stored in UTC


def local_time(value: dt.datetime | None, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A stored (UTC) time as Beijing wall-clock time; "—" for none."""
    if value is None:
        return "—"
    if value.tzinfo is None:  # SQLite hands back naive UTC
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(LOCAL_TZ).strftime(fmt)


def thousands(value: int | None) -> str:
    """1234567 → "1,234,567": totals are read at a glance (both languages group by 3)."""
    return "—" if value is None else f"{value:,}"


def percent(value: float | None) -> str:
    """0.8734 → "87.3%"; "—" when there is no rate (no headcount)."""
    return "—" if value is None else f"{value * 100:.1f}%"


def compact_json(value: Any) -> str:
    """Audit details and the like on one line, Chinese kept readable."""
    if not value:
        return ""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


templates = Jinja2Templates(directory=Path(__file__).with_name("templates"))
templates.env.globals.update(version=__version__, Permission=Permission, Role=Role)
templates.env.filters.update(
    local_time=local_time, compact_json=compact_json, thousands=thousands, percent=percent
)

E = TypeVar("E", bound=StrEnum)
RecordId = Annotated[int, PathParam(ge=1, le=MAX_ID)]


class PageError(Exception):
    """A refusal a page shows as such (CSRF failure, bad form): status and message key."""

    def __init__(self, status_code: int, message_key: str, title_key: str | None = None) -> None:
        super().__init__(message_key)
        self.status_code = status_code
        self.message_key = message_key
        self.title_key = title_key


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


def remember_session(request: Request, session: Session) -> None:
    # PageRoute rolls this session back when it turns an exception into an error page.
    request.state.db = session


def console_context(
    request: Request, page: AnyPage, principal: StaffPage, session: DbSession
) -> Page:
    remember_session(request, session)
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
    remember_session(request, session)
    page.principal = principal
    page.user_name = principal.username
    return page


ConsolePage = Annotated[Page, Depends(console_context)]
PortalPage = Annotated[Page, Depends(portal_context)]


def caller(page: Page) -> Principal:
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
    request: Request,
    status_code: int,
    message_key: str | None = None,
    title_key: str | None = None,
    **context: Any,
) -> Response:
    page: Page | None = getattr(request.state, "page", None)
    if page is None:
        page = _new_page(request, request.app.state.smartunion)
    default_title, body_key = _ERRORS.get(status_code, ("error.400.title", "error.400.body"))
    title_key = title_key or default_title
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
                return error_page(request, exc.status_code, exc.message_key, exc.title_key)
            except RequestValidationError as exc:
                await _rollback(request, exc)
                return error_page(request, 400)

        return route


async def _rollback(request: Request, exc: Exception) -> None:
    session: Session | None = getattr(request.state, "db", None)
    if session is not None and not isinstance(exc, KeepsTransaction):
        await run_in_threadpool(session.rollback)


# ---------------------------------------------------------------------------------------
# Small parsing helpers: HTML forms send "" for an unset field, which typed query
# parameters would turn into a 422; pages treat "" (and junk) as "no filter".


def opt_int(value: str | None) -> int | None:
    value = (value or "").strip()
    if not (value.isascii() and value.isdigit() and len(value) <= 10):
        return None
    n = int(value)
    return n if n <= MAX_ID else None


def opt_enum(cls: type[E], value: str | None) -> E | None:
    try:
        return cls(value) if value else None
    except ValueError:
        return None


def page_number(value: str | None) -> int:
    n = opt_int(value)
    return min(max(n or 1, 1), 100_000)


def page_size(value: str | None) -> int:
    n = opt_int(value)
    return n if n in PAGE_SIZES else PAGE_SIZES[0]


def query_url(base: str, params: dict[str, Any]) -> str:
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
        return query_url(self.base, {**self.params, "page": page, "size": self.size})

    @property
    def hidden_fields(self) -> list[tuple[str, str]]:
        """The list's filters and page size, for the "go to page" form to carry along."""
        fields = [("size", str(self.size))]
        for key, value in self.params.items():
            values = value if isinstance(value, list | tuple) else [value]
            fields += [(key, str(v)) for v in values if v not in (None, "")]
        return fields

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


def region_name(code: str) -> str:
    found = regions.region(code)
    return found.name if found else ""


def years_since(day: dt.date, today: dt.date | None = None) -> int:
    today = today or dt.date.today()
    return today.year - day.year - ((today.month, today.day) < (day.month, day.day))


def field_errors(exc: ValidationError, prefix: str) -> dict[str, str]:
    """A form's validation errors as {field: message key} (``<prefix>.<field>``), one per
    field, for the template to show beside the field. Model-level errors name their field
    before a colon ("join_date: ..."); anything unnamed goes under ``"_form"``."""
    out: dict[str, str] = {}
    for error in exc.errors():
        loc = [str(part) for part in error.get("loc", ())]
        field = loc[0] if loc else ""
        if not field:
            head = str(error.get("msg", "")).removeprefix("Value error, ").split(":", 1)[0]
            field = head if head.isidentifier() else "_form"
        out.setdefault(field, f"{prefix}.{field}")
    return out


def page_router() -> APIRouter:
    """A router for pages: domain refusals become HTML error pages (:class:`PageRoute`)."""
    return APIRouter(include_in_schema=False, route_class=PageRoute)


def unknown_page_context(request: Request, page: AnyPage, session: DbSession) -> Page:
    """The page of an unknown address: whoever is logged in for this part of the site sees
    the 404 in their own layout; anyone else gets the bare one (no log-in detour)."""
    remember_session(request, session)
    principal = deps.cookie_principal(request, session, page.state)
    if principal is not None:
        member_side = page.portal == "member"
        if (member_side and principal.member_id is not None) or (
            not member_side and principal.role in STAFF_ROLES
        ):
            page.principal = principal
    return page


ALL_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]


def add_not_found_page(router: APIRouter, prefix: str) -> None:
    """Answer every address under ``prefix`` that no page claims with a 404 page.

    Call it after the section's routes are on ``router``: routes match in order, so this
    catch-all only gets what nothing before it took (the API, outside the prefix, keeps
    its JSON 404). ``prefix + "/"`` alone still redirects to ``prefix``, as before.
    """

    @router.api_route(prefix + "/{rest:path}", methods=ALL_METHODS)
    def unknown_address(
        rest: str, page: Annotated[Page, Depends(unknown_page_context)]
    ) -> Response:
        if not rest:
            return RedirectResponse(prefix or "/", status_code=307)
        raise PageError(404, "error.page_missing.body", "error.page_missing.title")


def breadcrumb(session: Session, principal: Principal, org_path: str) -> list[tuple[int, str]]:
    """Ancestors of an organisation that lie within the caller's scope, top down."""
    crumbs = []
    for part in org_path.strip("/").split("/")[:-1]:
        org_id = opt_int(part)
        if org_id is None:
            continue
        try:
            crumbs.append((org_id, orgs.get_org(session, principal, org_id).name))
        except NotFound:
            continue  # above the caller's scope: not shown, not linked
    return crumbs
