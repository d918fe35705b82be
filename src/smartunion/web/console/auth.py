"""Staff log-in and log-out (``/login``, ``/logout``) and TOTP enrolment.

TOTP for the roles that need it: first log-in goes through an enrolment page on its own
short-lived session kind; afterwards the code travels with the password (see below for
why there is no separate code step).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Response
from fastapi.responses import RedirectResponse
from markupsafe import Markup
from sqlalchemy.orm import Session

from smartunion.security import service as identity
from smartunion.security import totp
from smartunion.security.models import TOTP_SECRET, User
from smartunion.web.deps import (
    ClientIp,
    DbSession,
)
from smartunion.web.pagekit import (
    AnyPage,
    Page,
    page_router,
    remember_session,
    safe_next,
)
from smartunion.web.signin import (
    ENROL_COOKIE,
    ENROL_PATH,
    OTP_MAX_LENGTH,
    LoginFormDep,
    authenticate,
    end_session,
    home_for,
    render_login,
    start_session,
)

router = page_router()


@router.get("/login")
def login_page(
    page: AnyPage,
    next_url: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    return render_login(page, template="console/login.html", next_url=safe_next(next_url, ""))


@router.post("/login")
def login_submit(page: AnyPage, session: DbSession, ip: ClientIp, form: LoginFormDep) -> Response:
    remember_session(page.request, session)
    page.check_csrf(form.csrf_token)
    next_url = safe_next(form.next, "")
    result = authenticate(page, session, form, ip, "console/login.html", next_url, enrol_here=True)
    if isinstance(result, Response):
        return result
    return start_session(page, session, result, ip, home_for(result, next_url))


@router.post("/logout")
def logout(page: AnyPage, session: DbSession, csrf_token: Annotated[str, Form()] = "") -> Response:
    remember_session(page.request, session)
    page.check_csrf(csrf_token)
    return end_session(page, session, "/login")


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
    remember_session(page.request, session)
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
    remember_session(page.request, session)
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
    response = start_session(page, session, user, ip, home_for(user, next_url))
    response.delete_cookie(ENROL_COOKIE, path=ENROL_PATH, httponly=True, samesite="strict")
    return _no_store(response)
