"""Request dependencies: one DB session per request, the caller, the crypto."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from smartunion.db import finish
from smartunion.security import service as identity
from smartunion.security.crypto import FieldCrypto
from smartunion.security.permissions import STAFF_ROLES
from smartunion.security.principal import Principal
from smartunion.web.state import AppState

SESSION_COOKIE = "su_session"
oauth2 = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


# Dependencies that do no I/O are ``async``: a sync one costs a hop to a worker thread.
async def get_state(request: Request) -> AppState:
    state: AppState = request.app.state.smartunion
    return state


State = Annotated[AppState, Depends(get_state)]


async def get_session(state: State) -> AsyncIterator[Session]:
    """Commit when the handler returns normally, roll back when it raises.

    ``scope="function"`` below: the commit runs when the handler has returned and its
    answer is rendered, *before* it is sent. A failed commit becomes an error answer, never
    a 2xx for a write that did not happen (the default scope commits after sending).
    Making the session does no I/O, so only its end goes to a worker thread.
    """
    session = state.db.sessionmaker()
    try:
        yield session
    except BaseException as exc:
        await run_in_threadpool(finish, session, exc)
        raise
    await run_in_threadpool(finish, session, None)


DbSession = Annotated[Session, Depends(get_session, scope="function")]


async def get_crypto(state: State) -> FieldCrypto:
    return state.crypto


Crypto = Annotated[FieldCrypto, Depends(get_crypto)]


async def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


ClientIp = Annotated[str, Depends(client_ip)]


def authenticate(session: Session | None, state: AppState, token: str | None) -> Principal:
    """The caller of a bearer token, charged to its rate limit; 401 or 429 otherwise.

    With no token (``session`` may then be None) it raises at once, without the database.
    """
    principal = None
    if token and session is not None:
        principal = identity.resolve_session(
            session, token, kind="bearer", limits=state.bearer_limits
        )
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="not authenticated",
            headers={"WWW-Authenticate": "Bearer"},
        )
    key = f"session:{principal.session_id}"
    if not state.api_limiter.hit(key):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail=f"more than {state.api_limiter.per_minute} requests a minute",
            headers={"Retry-After": str(state.api_limiter.retry_after(key))},
        )
    return principal


def api_principal(
    session: DbSession, state: State, token: Annotated[str | None, Depends(oauth2)]
) -> Principal:
    # Endpoints on a ``web.unit.OneThreadRoute`` call ``authenticate`` themselves.
    return authenticate(session, state, token)


ApiPrincipal = Annotated[Principal, Depends(api_principal)]


class LoginRequired(Exception):
    """Raised by page dependencies; the app turns it into a redirect to the login page."""

    def __init__(self, next_url: str, portal: str = "console") -> None:
        self.next_url = next_url
        self.portal = portal


def cookie_principal(request: Request, session: Session, state: AppState) -> Principal | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    return identity.resolve_session(session, token, kind="cookie", limits=state.cookie_limits)


def staff_page_principal(request: Request, session: DbSession, state: State) -> Principal:
    refuse_cross_site(request)
    principal = cookie_principal(request, session, state)
    if principal is None or principal.role not in STAFF_ROLES:
        raise LoginRequired(request.url.path)
    return principal


def member_page_principal(request: Request, session: DbSession, state: State) -> Principal:
    refuse_cross_site(request)
    principal = cookie_principal(request, session, state)
    if principal is None or principal.member_id is None:
        raise LoginRequired(request.url.path, portal="member")
    return principal


StaffPage = Annotated[Principal, Depends(staff_page_principal)]
MemberPage = Annotated[Principal, Depends(member_page_principal)]


CSRF_COOKIE = "su_csrf"


# ---------------------------------------------------------------------------------------
# Cross-site requests (issue 7, item 17)
#
# A form's CSRF token is an HMAC of what it is bound to: the browser's session once it has
# one (so a token and cookie taken from another browser are worthless here), and before
# log-in the browser's own ``su_csrf`` secret. A page that needs a logged-in caller is not
# served to a request that fails the same-site checks: a link on another site could
# otherwise make a victim's browser read member lists and spend the victim's guard budget.


class CrossSiteRequest(Exception):
    """A console or portal page asked for from another site; nothing was read."""

    def __init__(self, url: str) -> None:
        super().__init__("cross-site request")
        self.url = url


def is_cross_site(request: Request) -> bool:
    """True when the browser says the request comes from another site.

    ``Sec-Fetch-Site`` (every current browser): ``cross-site`` or ``same-site`` (a sibling
    host) fail; ``same-origin`` and ``none`` (typed, bookmarked) pass. Without it, an
    ``Origin`` other than this one fails. A request with neither (older browsers, scripts)
    passes: the session cookie's SameSite=Lax and the CSRF token still hold for writes.
    """
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        return site in ("cross-site", "same-site")
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    return origin != own


def refuse_cross_site(request: Request) -> None:
    if is_cross_site(request):
        query = request.url.query
        raise CrossSiteRequest(request.url.path + (f"?{query}" if query else ""))


def csrf_binding(request: Request, csrf_cookie: str | None = None) -> str:
    """What a form's token is bound to: the session if the browser has one, else its
    ``su_csrf`` secret (``csrf_cookie``: one being set on this very answer)."""
    session = request.cookies.get(SESSION_COOKIE)
    if session:
        return "session:" + hashlib.sha256(session.encode()).hexdigest()
    cookie = csrf_cookie if csrf_cookie is not None else request.cookies.get(CSRF_COOKIE, "")
    return f"pre:{cookie}" if cookie else ""


def csrf_token(state: AppState, binding: str) -> str:
    """A form from another site can know neither the binding nor the key."""
    key = state.crypto.ring.derive(b"smartunion-csrf-v2")
    return hmac.new(key, binding.encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, state: AppState, submitted: str | None) -> None:
    binding = csrf_binding(request)
    expected = csrf_token(state, binding) if binding else ""
    if not submitted or not expected or not hmac.compare_digest(submitted, expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="CSRF check failed")
