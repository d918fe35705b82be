"""Accounts (用户管理): administrators manage the accounts of their organisations."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from smartunion.db import DbId
from smartunion.security import users
from smartunion.security.permissions import Role
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


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64, pattern=r"^[A-Za-z0-9_.\-]+$")
    password: str = Field(min_length=10, max_length=256)
    role: Role
    org_id: DbId
    display_name: str = Field("", max_length=60)
    member_id: DbId | None = None


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
        member_id=data.member_id,
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
