"""Log-in for API clients: OAuth2 password flow returning an opaque bearer token."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Form, HTTPException, status
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel, Field

from smartunion.security import service as identity
from smartunion.security.permissions import Permission, Role
from smartunion.web.deps import ApiPrincipal, ClientIp, DbSession, State, oauth2
from smartunion.web.unit import OneThreadRoute

router = APIRouter(prefix="/auth", tags=["auth"], route_class=OneThreadRoute)


class Token(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (the OAuth2 token type, not a secret)
    expires_in: int


class Me(BaseModel):
    user_id: int
    username: str
    role: Role
    org_id: int
    member_id: int | None
    permissions: list[Permission]


class LoginForm(OAuth2PasswordRequestForm):
    """OAuth2 password flow plus ``otp``: the TOTP code, for accounts that have one."""

    def __init__(
        self,
        username: Annotated[str, Form(max_length=64)],
        password: Annotated[str, Form(max_length=256)],
        otp: Annotated[str | None, Form(max_length=8, description="TOTP code")] = None,
    ) -> None:
        super().__init__(username=username, password=password)
        self.otp = otp


@router.post(
    "/token",
    response_model=Token,
    summary="Exchange username, password (and TOTP code) for a token",
    responses={
        401: {
            "description": "Wrong credentials, or `otp_required`: the account has TOTP, send "
            "the code too (answered whether the password was right or not)"
        },
        403: {
            "description": "The role requires TOTP: enrol in the staff console first; or the "
            "account is suspended (said only when the credentials were right)"
        },
        429: {"description": "Too many attempts from this address"},
    },
)
def login(
    form: Annotated[LoginForm, Depends()],
    session: DbSession,
    state: State,
    ip: ClientIp,
) -> Token:
    if not state.login_limiter.hit("login", ip):
        raise HTTPException(
            status.HTTP_429_TOO_MANY_REQUESTS,
            detail="too many log-in attempts; wait a minute",
            headers={"Retry-After": str(state.login_limiter.retry_after("login", ip))},
        )
    # AuthenticationFailed, SecondFactorRequired and EnrolmentRequired become 401/401/403 in
    # the app, after their audit events are committed.
    user = identity.authenticate(
        session,
        form.username,
        form.password,
        otp=form.otp,
        crypto=state.crypto,
        totp_roles=state.settings.totp_roles,
        client_ip=ip,
    )
    seconds = state.settings.api_token_seconds
    token = identity.open_session(
        session, user, kind="bearer", lifetime=dt.timedelta(seconds=seconds), client_ip=ip
    )
    return Token(access_token=token, expires_in=seconds)


@router.post("/logout", status_code=204, summary="Revoke the token used for this call")
def logout(
    principal: ApiPrincipal, session: DbSession, token: Annotated[str | None, Depends(oauth2)]
) -> None:
    if token:
        identity.revoke_session(session, token)


class PasswordChange(BaseModel):
    current_password: str = Field(max_length=256)
    new_password: str = Field(min_length=10, max_length=256)


@router.post(
    "/password",
    status_code=204,
    summary="Change your own password (every other session and token of yours ends)",
    responses={
        403: {"description": "The current password is wrong (counts towards the lock-out)"},
        422: {"description": "The new password does not meet the policy"},
    },
)
def change_password(
    data: PasswordChange, principal: ApiPrincipal, session: DbSession, ip: ClientIp
) -> None:
    identity.change_password(
        session,
        principal,
        current=data.current_password,
        new=data.new_password,
        client_ip=ip,
    )


@router.get("/me", response_model=Me, summary="Who the token belongs to")
def me(principal: ApiPrincipal) -> Me:
    return Me(
        user_id=principal.user_id,
        username=principal.username,
        role=principal.role,
        org_id=principal.org_id,
        member_id=principal.member_id,
        permissions=sorted(principal.permissions),
    )
