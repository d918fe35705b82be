"""Console forms that write members: register a new member, edit one.

Both go through the member service (``create_member``, ``update_member``), so scope,
validation and audit are the API's. What the pages add: the form, and each refusal said
in Chinese beside the field it is about (``memberform.error.<field>``). Registered before
``console/members.py``: ``/console/members/new`` must not be read as a member id.

The edit form never shows the name or phone in plaintext (they are masked everywhere
else too): left empty they stay as they are, typed they replace the stored value.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Depends, Form, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from pydantic import ValidationError
from sqlalchemy.orm import Session

from smartunion.errors import Conflict, InvalidInput, NotFound
from smartunion.members import schemas as member_schemas
from smartunion.members import service as members
from smartunion.members.models import Education, EmploymentForm, MemberStatus, SkillLevel
from smartunion.orgs import service as orgs
from smartunion.reference.regions import ETHNIC_GROUPS
from smartunion.security.permissions import Permission
from smartunion.security.principal import Principal
from smartunion.validation import ValidationError as FieldValidationError
from smartunion.web.console.members import org_choices
from smartunion.web.deps import Crypto, DbSession
from smartunion.web.pagekit import (
    ConsolePage,
    Page,
    RecordId,
    caller,
    field_errors,
    opt_int,
    page_router,
)

router = page_router()
ERROR_PREFIX = "memberform.error"
# What the service's own refusals are about, by the field they name.
SERVICE_FIELDS = {"department_id": "enterprise_id", "enterprise_id": "enterprise_id"}


@dataclass
class MemberForm:
    """What was typed, to show it again with the errors (never the ID number or phone)."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)

    def get(self, name: str, default: str = "") -> str:
        return self.values.get(name, default)


def _choices() -> dict[str, Any]:
    return {
        "educations": list(Education),
        "skill_levels": list(SkillLevel),
        "employment_forms": list(EmploymentForm),
        "statuses": list(MemberStatus),
        "ethnic_groups": sorted(ETHNIC_GROUPS, key=lambda g: (g != "汉族", g)),
    }


def _enterprises(session: Session, principal: Principal) -> list[tuple[int, str]]:
    if not principal.can(Permission.ENTERPRISE_READ):
        return []
    rows, _ = orgs.list_enterprises(session, principal, size=200)
    return sorted(((e.id, e.name) for e in rows), key=lambda pair: pair[1])


# ---------------------------------------------------------------------------------------
# Register a new member


@dataclass(frozen=True)
class NewMemberForm:
    name: str
    id_number: str
    phone: str
    ethnicity: str
    education: str
    org_id: str
    enterprise_id: str
    occupation: str
    skill_level: str
    employment_form: str
    join_date: str
    csrf_token: str


def new_member_form(
    name: Annotated[str, Form(max_length=60)] = "",
    id_number: Annotated[str, Form(max_length=32)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    ethnicity: Annotated[str, Form(max_length=16)] = "汉族",
    education: Annotated[str, Form(max_length=20)] = "",
    org_id: Annotated[str, Form(max_length=12)] = "",
    enterprise_id: Annotated[str, Form(max_length=12)] = "",
    occupation: Annotated[str, Form(max_length=60)] = "",
    skill_level: Annotated[str, Form(max_length=20)] = "none",
    employment_form: Annotated[str, Form(max_length=20)] = "standard",
    join_date: Annotated[str, Form(max_length=10)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> NewMemberForm:
    return NewMemberForm(
        name.strip(),
        id_number.strip(),
        phone.strip(),
        ethnicity.strip(),
        education,
        org_id,
        enterprise_id,
        occupation.strip(),
        skill_level,
        employment_form,
        join_date.strip(),
        csrf_token,
    )


def _new_page(
    page: Page, session: Session, form: MemberForm, *, status_code: int = 200
) -> HTMLResponse:
    principal = caller(page)
    principal.require(Permission.MEMBER_WRITE)
    return page.render(
        "console/member_new.html",
        status_code=status_code,
        form=form,
        org_choices=org_choices(session, principal, opt_int(form.get("org_id"))),
        enterprise_choices=_enterprises(session, principal),
        today=dt.date.today().isoformat(),
        nav="members",
        **_choices(),
    )


@router.get("/console/members/new")
def member_new(page: ConsolePage, session: DbSession) -> Response:
    return _new_page(page, session, MemberForm(values={"org_id": str(caller(page).org_id)}))


@router.post("/console/members/new")
def member_create(
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    form: Annotated[NewMemberForm, Depends(new_member_form)],
) -> Response:
    page.check_csrf(form.csrf_token)
    principal = caller(page)
    # Shown again on a refusal: everything but the ID number and phone.
    shown = MemberForm(
        values={
            k: v
            for k, v in vars(form).items()
            if k not in ("id_number", "phone", "csrf_token") and isinstance(v, str)
        }
    )
    raw: dict[str, Any] = {
        "name": form.name,
        "id_number": form.id_number,
        "phone": form.phone or None,
        "ethnicity": form.ethnicity,
        "education": form.education,
        "org_id": opt_int(form.org_id),
        "enterprise_id": opt_int(form.enterprise_id),
        "occupation": form.occupation,
        "skill_level": form.skill_level,
        "employment_form": form.employment_form,
    }
    if form.join_date:
        raw["join_date"] = form.join_date
    try:
        data = member_schemas.MemberCreate.model_validate(raw)
    except ValidationError as exc:
        shown.errors = field_errors(exc, ERROR_PREFIX)
        if raw["org_id"] is None:
            shown.errors["org_id"] = f"{ERROR_PREFIX}.org_id"
        return _new_page(page, session, shown, status_code=422)
    try:
        created = members.create_member(session, principal, crypto, data)
    except Conflict:
        # The service audited the answer (and keeps it): say it at the ID number.
        shown.errors = {"id_number": f"{ERROR_PREFIX}.id_number_taken"}
        return _new_page(page, session, shown, status_code=409)
    except (InvalidInput, FieldValidationError) as exc:
        name = SERVICE_FIELDS.get(exc.field, exc.field)
        shown.errors = {name: f"{ERROR_PREFIX}.{name}"}
        return _new_page(page, session, shown, status_code=422)
    except NotFound:
        # An organisation or employer outside the caller's scope (or gone).
        shown.errors = {"org_id": f"{ERROR_PREFIX}.placement"}
        return _new_page(page, session, shown, status_code=422)
    return RedirectResponse(f"/console/members/{created.id}?saved=created", status_code=303)


# ---------------------------------------------------------------------------------------
# Edit a member

EDITABLE = (
    "name",
    "phone",
    "ethnicity",
    "education",
    "occupation",
    "skill_level",
    "employment_form",
    "status",
)


def _code(value: object) -> str:
    """A stored value as the form sends it: an enum's code, anything else as text."""
    return str(value.value) if isinstance(value, StrEnum) else str(value)


def _edit_page(
    page: Page,
    member: member_schemas.Member,
    form: MemberForm,
    *,
    status_code: int = 200,
) -> HTMLResponse:
    caller(page).require(Permission.MEMBER_WRITE)
    return page.render(
        "console/member_edit.html",
        status_code=status_code,
        m=member,
        form=form,
        nav="members",
        **_choices(),
    )


@router.get("/console/members/{member_id}/edit")
def member_edit(
    member_id: RecordId, page: ConsolePage, session: DbSession, crypto: Crypto
) -> Response:
    principal = caller(page)
    principal.require(Permission.MEMBER_WRITE)
    member = members.get_member(session, principal, crypto, member_id)
    current = {k: _code(getattr(member, k)) for k in EDITABLE if k not in ("name", "phone")}
    return _edit_page(page, member, MemberForm(values=current))


@router.post("/console/members/{member_id}/edit")
def member_save(
    member_id: RecordId,
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    name: Annotated[str, Form(max_length=60)] = "",
    phone: Annotated[str, Form(max_length=32)] = "",
    clear_phone: Annotated[str, Form(max_length=1)] = "",
    ethnicity: Annotated[str, Form(max_length=16)] = "",
    education: Annotated[str, Form(max_length=20)] = "",
    occupation: Annotated[str, Form(max_length=60)] = "",
    skill_level: Annotated[str, Form(max_length=20)] = "",
    employment_form: Annotated[str, Form(max_length=20)] = "",
    status: Annotated[str, Form(max_length=20)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    principal = caller(page)
    principal.require(Permission.MEMBER_WRITE)
    before = members.get_member(session, principal, crypto, member_id)
    typed = {
        "ethnicity": ethnicity.strip(),
        "education": education,
        "occupation": occupation.strip(),
        "skill_level": skill_level,
        "employment_form": employment_form,
        "status": status,
    }
    # Only what changed is sent (and audited as changed); empty name or phone: unchanged.
    changes: dict[str, Any] = {
        k: v for k, v in typed.items() if v and v != _code(getattr(before, k))
    }
    if name.strip():
        changes["name"] = name.strip()
    if clear_phone == "1":
        changes["phone"] = None
    elif phone.strip():
        changes["phone"] = phone.strip()
    shown = MemberForm(values={**typed, "name": name.strip()})
    try:
        data = member_schemas.MemberUpdate.model_validate(changes)
    except ValidationError as exc:
        shown.errors = field_errors(exc, ERROR_PREFIX)
        return _edit_page(page, before, shown, status_code=422)
    members.update_member(session, principal, crypto, member_id, data)
    return RedirectResponse(f"/console/members/{member_id}?saved=updated", status_code=303)
