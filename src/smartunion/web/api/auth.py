"""Log-in for API clients: OAuth2 password flow returning an opaque bearer token."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from smartunion.security import service as identity
from smartunion.security.permissions import Permission, Role
from smartunion.web.deps import ApiPrincipal, ClientIp, DbSession, State, oauth2

router = APIRouter(prefix="/auth", tags=["auth"])


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


@router.post("/token", response_model=Token, summary="Exchange username and password for a token")
def login(
    form: Annotated[OAuth2PasswordRequestForm, Depends()],
    session: DbSession,
    state: State,
    ip: ClientIp,
) -> Token:
    # AuthenticationFailed becomes a 401 in the app, after its audit event is committed.
    user = identity.authenticate(session, form.username, form.password, client_ip=ip)
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
