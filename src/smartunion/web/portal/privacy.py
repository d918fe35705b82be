"""Personal-information rights in the member portal (``/m/privacy``), over
:mod:`smartunion.privacy.service`: consents (grant / withdraw), "my data" as a JSON file or a
printable page (the only responses in the whole application that carry the member's own ID
number and phone in plaintext — they are theirs, PIPL 第四十五条), correction and deletion
requests and their status.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

from fastapi import Form, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from smartunion import i18n
from smartunion.errors import Conflict
from smartunion.members.models import (
    ConsentRecord,
    Education,
    EmploymentForm,
    Gender,
    MemberStatus,
    SkillLevel,
)
from smartunion.privacy import service as privacy
from smartunion.privacy.register import PURPOSES, Purpose
from smartunion.web.deps import Crypto, DbSession
from smartunion.web.labels import action_label, field_label, purpose_title, role_label
from smartunion.web.pagekit import (
    Page,
    PortalPage,
    caller,
    local_time,
    page_router,
)

router = page_router()

# What a member can ask to have corrected; "other" leaves it to the note.
CORRECTABLE = (
    "name",
    "gender",
    "birth_date",
    "id_number",
    "phone",
    "ethnicity",
    "education",
    "enterprise",
    "occupation",
    "skill_level",
    "employment_form",
    "other",
)
KINDS = ("correction", "deletion")
NOTICES = ("granted", "withdrawn", "sent")


@dataclass(frozen=True)
class ConsentRow:
    purpose: Purpose
    title: str
    record: ConsentRecord | None

    @property
    def granted(self) -> bool:
        return self.record is not None

    @property
    def outdated(self) -> bool:
        """Consent given to an older text: ask again for the current one."""
        return self.record is not None and self.record.version != self.purpose.version


def _portal_privacy(
    page: Page,
    session: Session,
    *,
    notice: str | None = None,
    error: str | None = None,
    form_kind: str = "correction",
    form_field: str = "",
    form_note: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    principal = caller(page)
    live = privacy.consents(session, principal)
    consent_rows = [
        ConsentRow(PURPOSES[key], purpose_title(page, PURPOSES[key]), record)
        for key, record in live.items()
    ]
    statutory = [(p, purpose_title(page, p)) for p in PURPOSES.values() if not p.needs_consent]
    requests = [
        {
            "request": r,
            "field": field_label(page, r.field),
            "created": local_time(r.created_at, "%Y-%m-%d"),
            "handled": local_time(r.handled_at, "%Y-%m-%d") if r.handled_at else "",
        }
        for r in privacy.my_requests(session, principal)
    ]
    return page.render(
        "portal/privacy.html",
        status_code=status_code,
        consents=consent_rows,
        statutory=statutory,
        requests=requests,
        fields=[(f, field_label(page, f)) for f in CORRECTABLE],
        notice=notice,
        error=error,
        form_kind=form_kind,
        form_field=form_field,
        form_note=form_note,
    )


@router.get("/m/privacy")
def portal_privacy(
    page: PortalPage,
    session: DbSession,
    done: Annotated[str, Query(max_length=12)] = "",
) -> Response:
    notice = f"privacy.notice.{done}" if done in NOTICES else None
    return _portal_privacy(page, session, notice=notice)


@router.post("/m/privacy/consents/{purpose}/grant")
def consent_grant(
    purpose: str,
    page: PortalPage,
    session: DbSession,
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    # An unknown purpose, or one that rests on statutory duty, is refused by the service.
    privacy.grant(session, caller(page), purpose[:40], channel="portal")
    return RedirectResponse("/m/privacy?done=granted", status_code=303)


@router.post("/m/privacy/consents/{purpose}/withdraw")
def consent_withdraw(
    purpose: str,
    page: PortalPage,
    session: DbSession,
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    privacy.withdraw(session, caller(page), purpose[:40])
    return RedirectResponse("/m/privacy?done=withdrawn", status_code=303)


# The profile of a data download, in the order a person reads it: key, and the enum whose
# label shows the stored code (None: the value is shown as it is).
PROFILE_FIELDS: tuple[tuple[str, str, type[StrEnum] | None], ...] = (
    ("member_no", "field.member_no", None),
    ("name", "field.name", None),
    ("gender", "field.gender", Gender),
    ("birth_date", "field.birth_date", None),
    ("id_number", "field.id_number", None),
    ("phone", "field.phone", None),
    ("ethnicity", "field.ethnicity", None),
    ("education", "field.education", Education),
    ("union", "field.org", None),
    ("employer", "field.enterprise", None),
    ("occupation", "field.occupation", None),
    ("skill_level", "field.skill_level", SkillLevel),
    ("employment_form", "field.employment_form", EmploymentForm),
    ("join_date", "field.join_date", None),
    ("status", "field.status", MemberStatus),
)


def _when(value: str | None) -> str:
    return local_time(dt.datetime.fromisoformat(value), "%Y-%m-%d %H:%M") if value else ""


def _profile_rows(t: i18n.Translator, profile: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    for key, label, enum in PROFILE_FIELDS:
        value = profile.get(key)
        if enum is not None and value:
            try:
                text = t.enum(enum(value))
            except ValueError:
                text = str(value)
        else:
            text = str(value) if value not in (None, "") else "—"
        rows.append((t(label), text))
    return rows


def _data_page(page: Page, data: dict[str, Any]) -> Response:
    """The same content as the JSON file, for a person: labels and values in words."""
    t = page.t
    consents = [
        {
            "title": purpose_title(page, PURPOSES[c["purpose"]])
            if c["purpose"] in PURPOSES
            else c["purpose"],
            "version": c["version"],
            "granted": _when(c["granted_at"]),
            "withdrawn": _when(c["withdrawn_at"]),
        }
        for c in data["consents"]
    ]
    access = [
        {
            "at": _when(e["at"]),
            "action": action_label(t, e["action"]),
            "by": role_label(t, e["by_role"]),
        }
        for e in data["access_log"]
    ]
    response = page.render(
        "portal/my_data.html",
        profile=_profile_rows(t, data["profile"]),
        consents=consents,
        access=access,
        made_at=local_time(dt.datetime.now(dt.UTC), "%Y-%m-%d %H:%M"),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@router.post("/m/privacy/data")
def my_data_download(
    page: PortalPage,
    session: DbSession,
    crypto: Crypto,
    view: Annotated[str, Form(max_length=8)] = "json",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    """Everything held about the member: a JSON file, or (``view=page``) the same as a
    readable, printable page. A POST either way: it is audited and it is plaintext, so no
    other site may make the browser fetch it."""
    page.check_csrf(csrf_token)
    data = privacy.my_data(session, caller(page), crypto)
    if view == "page":
        return _data_page(page, data)
    body = json.dumps(data, ensure_ascii=False, indent=2)
    return Response(
        content=body.encode(),
        media_type="application/json",
        headers={
            "Content-Disposition": 'attachment; filename="my-data.json"',
            "Cache-Control": "no-store",
        },
    )


@router.post("/m/privacy/requests")
def subject_request_submit(
    page: PortalPage,
    session: DbSession,
    crypto: Crypto,
    kind: Annotated[str, Form(max_length=12)] = "",
    field: Annotated[str, Form(max_length=40)] = "",
    note: Annotated[str, Form(max_length=500)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    kind = kind if kind in KINDS else ""
    field = field if kind == "correction" and field in CORRECTABLE else ""
    note = note.strip()
    error = None
    if not kind:
        error = "privacy.error.kind"
    elif kind == "correction" and not field:
        error = "privacy.error.field"
    if error is None:
        try:
            privacy.submit_request(session, caller(page), crypto, kind=kind, field=field, note=note)
        except Conflict:
            error = "privacy.error.open"
    if error is not None:
        return _portal_privacy(
            page,
            session,
            error=error,
            form_kind=kind or "correction",
            form_field=field,
            form_note=note,
            status_code=409 if error == "privacy.error.open" else 422,
        )
    return RedirectResponse("/m/privacy?done=sent", status_code=303)
