"""Account management in the console (用户管理, ``/console/users``) over
:mod:`smartunion.security.users`.

The escalation rules are the service's, as for the API: an administrator manages accounts
of their own subtree, hands out only the roles at or below their own, never changes their
own role or disables themselves. The page only offers what the service would allow (the
role list is the caller's assignable roles) and says a refusal in words; the service still
decides. A password reset sets a new password under the password policy and ends the
account's sessions (``users.reset_password``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from smartunion.errors import Conflict, InvalidInput, NotFound
from smartunion.members import repository as member_repo
from smartunion.security import users
from smartunion.security.passwords import WeakPassword
from smartunion.security.permissions import Permission, Role
from smartunion.security.principal import PermissionDenied
from smartunion.security.service import UserError
from smartunion.web.console.members import org_choices
from smartunion.web.deps import DbSession
from smartunion.web.labels import role_label
from smartunion.web.pagekit import (
    ConsolePage,
    Page,
    RecordId,
    caller,
    local_time,
    opt_enum,
    opt_int,
    page_router,
)

router = page_router()
NOTICES = ("created", "role", "activated", "deactivated", "totp", "password")
USERNAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _page(
    page: Page,
    session: Session,
    *,
    notice: str | None = None,
    error: str | None = None,
    error_user: int | None = None,
    form: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    principal = caller(page)
    principal.require(Permission.USER_READ)
    accounts = users.list_users(session, principal)
    # Ids from the scoped list; the names of their unions add nothing new.
    org_names, _ = member_repo.names_for(session, {u.org_id for u in accounts}, set())
    assignable = sorted(users.ASSIGNABLE.get(principal.role, frozenset()), key=list(Role).index)
    rows = [
        {
            "user": u,
            "role": role_label(page.t, str(u.role)),
            "org_name": org_names.get(u.org_id, ""),
            "last_login": local_time(u.last_login_at, "%Y-%m-%d %H:%M") if u.last_login_at else "—",
            "mine": u.id == principal.user_id,
            # What the service would allow: the account's role must be one we hand out.
            "manageable": principal.can(Permission.USER_MANAGE)
            and u.id != principal.user_id
            and u.role in assignable,
        }
        for u in accounts
    ]
    return page.render(
        "console/users.html",
        status_code=status_code,
        rows=rows,
        # A member's account is made from the member's own record, not here.
        roles=[(r.value, role_label(page.t, r.value)) for r in assignable if r is not Role.MEMBER],
        orgs=org_choices(session, principal, None),
        can_manage=principal.can(Permission.USER_MANAGE),
        notice=f"users.notice.{notice}" if notice in NOTICES else None,
        error=error,
        error_user=error_user,
        form=form or {},
        nav="users",
    )


@router.get("/console/users")
def user_list(
    page: ConsolePage,
    session: DbSession,
    done: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    return _page(page, session, notice=done or None)


@router.post("/console/users")
def user_create(
    page: ConsolePage,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)] = "",
    display_name: Annotated[str, Form(max_length=60)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    org_id: Annotated[str, Form(max_length=12)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    principal = caller(page)
    principal.require(Permission.USER_MANAGE)
    username = username.strip()
    # Shown again on a refusal; never the password.
    form = {"username": username, "display_name": display_name.strip(), "role": role}
    form["org_id"] = org_id
    chosen_role, org = opt_enum(Role, role), opt_int(org_id)
    error = None
    if not (3 <= len(username) <= 64 and set(username) <= USERNAME_CHARS):
        error = "users.error.username"
    elif chosen_role is None or chosen_role is Role.MEMBER:
        error = "users.error.role"
    elif org is None:
        error = "users.error.org"
    elif len(password) < 10:
        error = "users.error.weak"
    if error is None and chosen_role is not None and org is not None:
        try:
            users.create(
                session,
                principal,
                username=username,
                password=password,
                role=chosen_role,
                org_id=org,
                display_name=display_name.strip(),
            )
        except PermissionDenied:
            error = "users.error.escalation"
        except WeakPassword:
            error = "users.error.weak"
        except Conflict:
            error = "users.error.taken"
        except (NotFound, UserError, InvalidInput):
            error = "users.error.org"
    if error is not None:
        return _page(page, session, error=error, form=form, status_code=422)
    return RedirectResponse("/console/users?done=created", status_code=303)


@router.post("/console/users/{user_id}")
def user_update(
    user_id: RecordId,
    page: ConsolePage,
    session: DbSession,
    action: Annotated[str, Form(max_length=12)] = "",
    role: Annotated[str, Form(max_length=20)] = "",
    new_password: Annotated[str, Form(max_length=256)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """One change per form: a new role, (de)activation, a TOTP or a password reset."""
    page.check_csrf(csrf_token)
    principal = caller(page)
    notice = ""
    try:
        if action == "role":
            new_role = opt_enum(Role, role)
            if new_role is None:
                raise InvalidInput("role", "unknown role")
            users.update(session, principal, user_id, role=new_role)
            notice = "role"
        elif action in ("activate", "deactivate"):
            users.update(session, principal, user_id, is_active=action == "activate")
            notice = "activated" if action == "activate" else "deactivated"
        elif action == "totp":
            users.update(session, principal, user_id, reset_totp=True)
            notice = "totp"
        elif action == "password":
            # The service's rules (policy, escalation, not one's own); sessions end.
            users.reset_password(session, principal, user_id, new_password)
            notice = "password"
        else:
            raise InvalidInput("action", "unknown action")
    except PermissionDenied:
        return _page(
            page,
            session,
            error="users.error.escalation",
            error_user=user_id,
            status_code=403,
        )
    except WeakPassword:
        return _page(page, session, error="users.error.weak", error_user=user_id, status_code=422)
    except InvalidInput as exc:
        key = "users.error.invalid"
        if "member" in exc.reason:
            key = "users.error.member_role"
        elif "own" in exc.reason:
            key = "users.error.self"
        return _page(page, session, error=key, error_user=user_id, status_code=422)
    return RedirectResponse(f"/console/users?done={notice}", status_code=303)
