"""API shapes for organisations and enterprises."""

from __future__ import annotations

from typing import Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from smartunion.db import DbId
from smartunion.orgs.models import OrgKind, OrgLevel, Ownership, SizeClass
from smartunion.reference import industries, regions
from smartunion.validation import check_uscc

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    page: int
    size: int


class Org(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    code: str
    name: str
    level: OrgLevel
    kind: OrgKind
    region_code: str
    parent_id: int | None
    enterprise_id: int | None


class OrgNode(Org):
    child_count: int = 0


class OrgCreate(BaseModel):
    code: str = Field(
        description="Unified social credit code issued by the union registry (81/89…)"
    )
    name: str = Field(min_length=2, max_length=120)
    level: OrgLevel
    kind: OrgKind = OrgKind.FEDERATION
    region_code: str
    parent_id: DbId
    enterprise_id: DbId | None = None

    @field_validator("code")
    @classmethod
    def _code(cls, v: str) -> str:
        code = check_uscc(v.strip().upper()).code
        if code[:2] not in ("81", "89"):
            raise ValueError("a union code starts with 81 (grassroots) or 89 (other unions)")
        return code

    @field_validator("region_code")
    @classmethod
    def _region(cls, v: str) -> str:
        if not regions.is_region_code(v):
            raise ValueError(f"{v} is not a GB/T 2260 region code")
        return v


class OrgUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=2, max_length=120)


class Enterprise(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    uscc: str
    name: str
    industry_division: str
    industry_name: str = ""
    ownership: Ownership
    size_class: SizeClass
    region_code: str
    employee_count: int
    is_platform: bool
    org_id: int


class EnterpriseCreate(BaseModel):
    uscc: str
    name: str = Field(min_length=2, max_length=160)
    industry_division: str
    ownership: Ownership
    size_class: SizeClass
    region_code: str
    employee_count: int = Field(ge=0)
    is_platform: bool = False
    org_id: DbId

    @field_validator("uscc")
    @classmethod
    def _uscc(cls, v: str) -> str:
        return check_uscc(v.strip().upper()).code

    @field_validator("industry_division")
    @classmethod
    def _division(cls, v: str) -> str:
        if not industries.is_division_code(v):
            raise ValueError(f"{v} is not a GB/T 4754-2017 division (大类) code")
        return v

    @field_validator("region_code")
    @classmethod
    def _region(cls, v: str) -> str:
        if not regions.is_region_code(v):
            raise ValueError(f"{v} is not a GB/T 2260 region code")
        return v


class EnterpriseUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=2, max_length=160)
    industry_division: str | None = None
    ownership: Ownership | None = None
    size_class: SizeClass | None = None
    employee_count: int | None = Field(default=None, ge=0)
    is_platform: bool | None = None

    @field_validator("industry_division")
    @classmethod
    def _division(cls, v: str | None) -> str | None:
        if v is not None and not industries.is_division_code(v):
            raise ValueError(f"{v} is not a GB/T 4754-2017 division (大类) code")
        return v
