"""Member portal log-in and log-out (``/m/login``, ``/m/logout``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Response

from smartunion.security.permissions import Role
from smartunion.web.deps import (
    ClientIp,
    DbSession,
)
from smartunion.web.pagekit import (
    AnyPage,
    page_router,
    remember_session,
    safe_next,
)
from smartunion.web.signin import (
    LoginFormDep,
    authenticate,
    end_session,
    render_login,
    start_session,
)

router = page_router()


@router.get("/m/login")
def portal_login_page(
    page: AnyPage,
    next_url: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    return render_login(page, template="portal/login.html", next_url=safe_next(next_url, ""))


@router.post("/m/login")
def portal_login_submit(
    page: AnyPage, session: DbSession, ip: ClientIp, form: LoginFormDep
) -> Response:
    remember_session(page.request, session)
    page.check_csrf(form.csrf_token)
    next_url = safe_next(form.next, "")
    result = authenticate(page, session, form, ip, "portal/login.html", next_url)
    if isinstance(result, Response):
        return result
    if result.role is not Role.MEMBER or result.member_id is None:
        # Staff accounts have their own door (and their own second factor rules).
        return render_login(
            page,
            template="portal/login.html",
            next_url=next_url,
            status_code=403,
            error="portal.error.staff",
        )
    target = next_url if next_url.startswith("/m/") else "/m/"
    return start_session(page, session, result, ip, target)


@router.post("/m/logout")
def portal_logout(
    page: AnyPage, session: DbSession, csrf_token: Annotated[str, Form()] = ""
) -> Response:
    remember_session(page.request, session)
    page.check_csrf(csrf_token)
    return end_session(page, session, "/m/login")
