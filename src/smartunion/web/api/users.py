"""Accounts (用户管理): administrators manage the accounts of their organisations."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field, computed_field

from smartunion.db import DbId
from smartunion.security import users
from smartunion.security.permissions import Role
from smartunion.security.service import AccountState, account_state
from smartunion.web.deps import ApiPrincipal, DbSession
from smartunion.web.unit import OneThreadRoute

router = APIRouter(prefix="/users", tags=["users"], route_class=OneThreadRoute)


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    username: str
    display_name: str
    role: Role
    org_id: DbId
    member_id: DbId | None
    is_active: bool
    totp_enabled: bool
    suspended_at: dt.datetime | None
    last_login_at: dt.datetime | None

    @computed_field(  # type: ignore[prop-decorator]
        description="active, suspended (by the insider guard) or inactive (deactivated)"
    )
    @property
    def state(self) -> AccountState:
        return account_state(is_active=self.is_active, suspended_at=self.suspended_at)


class UserCreate(BaseModel):
    """A staff account. Accounts that act as a member are opened only on the server
    (``smartunion users create --role member``): ``member_id`` is refused here."""

    model_config = ConfigDict(extra="forbid")

    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=10, max_length=256)
    role: Role
    org_id: DbId
    display_name: str = Field("", max_length=60)


class UserUpdate(BaseModel):
    role: Role | None = None
    is_active: bool | None = None
    reset_totp: bool = False


@router.get("", response_model=list[UserOut])
def list_users(principal: ApiPrincipal, session: DbSession) -> list[UserOut]:
    return [UserOut.model_validate(u) for u in users.list_users(session, principal)]


@router.post("", response_model=UserOut, status_code=201)
def create_user(data: UserCreate, principal: ApiPrincipal, session: DbSession) -> UserOut:
    user = users.create(
        session,
        principal,
        username=data.username,
        password=data.password,
        role=data.role,
        org_id=data.org_id,
        display_name=data.display_name,
    )
    return UserOut.model_validate(user)


@router.patch("/{user_id}", response_model=UserOut)
def update_user(
    user_id: DbId, data: UserUpdate, principal: ApiPrincipal, session: DbSession
) -> UserOut:
    user = users.update(
        session,
        principal,
        user_id,
        role=data.role,
        is_active=data.is_active,
        reset_totp=data.reset_totp,
    )
    return UserOut.model_validate(user)


class PasswordReset(BaseModel):
    new_password: str = Field(min_length=10, max_length=256)


@router.post(
    "/{user_id}/password",
    response_model=UserOut,
    summary="Set another account's password (every session and token of it ends)",
    responses={403: {"description": "Outside the escalation rules, or a member's account"}},
)
def reset_password(
    user_id: DbId, data: PasswordReset, principal: ApiPrincipal, session: DbSession
) -> UserOut:
    return UserOut.model_validate(
        users.reset_password(session, principal, user_id, data.new_password)
    )
