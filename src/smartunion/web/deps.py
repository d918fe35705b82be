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
    principal = cookie_principal(request, session, state)
    if principal is None or principal.role not in STAFF_ROLES:
        raise LoginRequired(request.url.path)
    return principal


def member_page_principal(request: Request, session: DbSession, state: State) -> Principal:
    principal = cookie_principal(request, session, state)
    if principal is None or principal.member_id is None:
        raise LoginRequired(request.url.path, portal="member")
    return principal


StaffPage = Annotated[Principal, Depends(staff_page_principal)]
MemberPage = Annotated[Principal, Depends(member_page_principal)]


CSRF_COOKIE = "su_csrf"


def csrf_token(state: AppState, cookie_value: str) -> str:
    """Signed double-submit token: a form posted from another site can know neither part."""
    key = state.crypto.ring.derive(b"smartunion-csrf-v1")
    return hmac.new(key, cookie_value.encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, state: AppState, submitted: str | None) -> None:
    cookie = request.cookies.get(CSRF_COOKIE, "")
    expected = csrf_token(state, cookie) if cookie else ""
    if not submitted or not expected or not hmac.compare_digest(submitted, expected):
        raise HTTPException(status.HTTP_403_FORBIDDEN, detail="CSRF check failed")
