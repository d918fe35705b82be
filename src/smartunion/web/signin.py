"""Log-in machinery shared by the two doors: the staff log-in (``console/auth.py``) and
the member portal's (``portal/auth.py``).

A log-in always starts a *new* session and revokes the one the browser came with, so a
planted session id is worthless (session fixation). The cookie is HttpOnly, SameSite=Lax,
and Secure when configured. Accounts whose role needs TOTP but has none are sent to the
enrolment page (:func:`begin_enrolment`; the page itself is in ``console/auth.py``).
"""

from __future__ import annotations

import datetime as dt
import secrets
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Form, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from smartunion.security import service as identity
from smartunion.security.models import User
from smartunion.security.permissions import Role
from smartunion.web.deps import SESSION_COOKIE
from smartunion.web.pagekit import (
    Page,
    query_url,
    set_csrf_cookie,
)


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


def render_login(
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


def start_session(
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


def authenticate(
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
        return render_login(
            page,
            template=template,
            next_url=next_url,
            status_code=429,
            error="login.error.rate",
            username=form.username,
        )
    if not form.username or not form.password:
        return render_login(
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
        return render_login(
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
        return render_login(
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
        return render_login(
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
            return begin_enrolment(page, session, exc.user, ip, next_url)
        return render_login(
            page,
            template=template,
            next_url=next_url,
            status_code=403,
            error="login.error.enrol",
            username=form.username,
        )


def end_session(page: Page, session: Session, target: str) -> RedirectResponse:
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


def home_for(user: User, next_url: str) -> str:
    if user.role is Role.MEMBER:
        return "/m/"  # a member who used the staff form still gets in — to the portal
    return next_url or ROLE_HOME.get(user.role, "/console")


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


def begin_enrolment(
    page: Page, session: Session, user: User, ip: str, next_url: str
) -> RedirectResponse:
    settings = page.state.settings
    # A fresh secret per password check: an abandoned attempt's secret is useless.
    identity.begin_totp_enrolment(session, user, page.state.crypto)
    token = identity.open_session(
        session, user, kind="enrol", lifetime=ENROL_LIFETIME, client_ip=ip
    )
    response = RedirectResponse(query_url(ENROL_PATH, {"next": next_url}), status_code=303)
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
