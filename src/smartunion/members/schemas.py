"""API shapes for members. Output is masked unless a reveal was asked for and recorded."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from smartunion.db import DbId
from smartunion.members.models import (
    Education,
    EmploymentForm,
    Gender,
    MemberStatus,
    SkillLevel,
)
from smartunion.reference.regions import ETHNIC_GROUPS
from smartunion.validation import check_citizen_id, check_mobile

RevealableField = Literal["name", "id_number", "phone", "birth_date"]


class Member(BaseModel):
    id: int
    member_no: str
    name: str
    gender: Gender
    birth_date: str
    id_number: str
    phone: str | None
    ethnicity: str
    education: Education
    org_id: int
    org_name: str = ""
    enterprise_id: int | None
    enterprise_name: str = ""
    department_id: int | None
    occupation: str
    skill_level: SkillLevel
    employment_form: EmploymentForm
    join_date: dt.date
    status: MemberStatus
    masked: bool = True


class MemberListItem(BaseModel):
    id: int
    member_no: str
    name: str
    gender: Gender
    birth_date: str
    org_id: int
    enterprise_id: int | None
    occupation: str
    employment_form: EmploymentForm
    status: MemberStatus


def _ethnicity(v: str) -> str:
    if v not in ETHNIC_GROUPS:
        raise ValueError(f"{v} is not one of the 56 ethnic groups")
    return v


class MemberCreate(BaseModel):
    name: str = Field(min_length=2, max_length=60)
    id_number: str = Field(description="GB 11643 citizen ID number; stored encrypted")
    phone: str | None = Field(default=None, description="Mainland mobile; stored encrypted")
    ethnicity: str = "汉族"
    education: Education
    org_id: DbId
    enterprise_id: DbId | None = None
    department_id: DbId | None = None
    occupation: str = Field(min_length=1, max_length=60)
    skill_level: SkillLevel = SkillLevel.NONE
    employment_form: EmploymentForm = EmploymentForm.STANDARD
    join_date: dt.date = Field(default_factory=dt.date.today)

    @field_validator("id_number")
    @classmethod
    def _id(cls, v: str) -> str:
        return check_citizen_id(v).number

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return None if v in (None, "") else check_mobile(v)

    @field_validator("ethnicity")
    @classmethod
    def _eth(cls, v: str) -> str:
        return _ethnicity(v)

    @model_validator(mode="after")
    def _join_after_birth(self) -> MemberCreate:
        birth = check_citizen_id(self.id_number).birth_date
        if self.join_date < birth.replace(year=birth.year + 16, day=min(birth.day, 28)):
            raise ValueError("join_date: a member joins at 16 or older")
        if self.join_date > dt.date.today():
            raise ValueError("join_date: cannot be in the future")
        return self


_REQUIRED_ON_UPDATE = (
    "name",
    "ethnicity",
    "education",
    "occupation",
    "skill_level",
    "employment_form",
    "status",
)


class MemberUpdate(BaseModel):
    """Fields left out stay as they are; ``null`` clears phone, employer or department only."""

    @model_validator(mode="before")
    @classmethod
    def _no_null_for_required(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in _REQUIRED_ON_UPDATE:
                if key in data and data[key] is None:
                    raise ValueError(f"{key}: cannot be cleared")
        return data

    name: str | None = Field(default=None, min_length=2, max_length=60)
    phone: str | None = None
    ethnicity: str | None = None
    education: Education | None = None
    enterprise_id: DbId | None = None
    department_id: DbId | None = None
    occupation: str | None = Field(default=None, min_length=1, max_length=60)
    skill_level: SkillLevel | None = None
    employment_form: EmploymentForm | None = None
    status: MemberStatus | None = None

    @field_validator("phone")
    @classmethod
    def _phone(cls, v: str | None) -> str | None:
        return None if v in (None, "") else check_mobile(v)

    @field_validator("ethnicity")
    @classmethod
    def _eth(cls, v: str | None) -> str | None:
        return None if v is None else _ethnicity(v)


class RevealRequest(BaseModel):
    reason: str = Field(min_length=4, max_length=200, description="Why the plaintext is needed")
    fields: list[RevealableField] = Field(default=["id_number", "phone"], min_length=1)


class Revealed(BaseModel):
    id: int
    fields: dict[str, str | None]


class LookupRequest(BaseModel):
    """Exact lookup by ID number or phone, sent in a body so it never lands in a URL or log."""

    id_number: str | None = None
    phone: str | None = None

    @model_validator(mode="after")
    def _one(self) -> LookupRequest:
        if (self.id_number is None) == (self.phone is None):
            raise ValueError("give exactly one of id_number or phone")
        return self
