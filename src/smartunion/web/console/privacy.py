"""Console privacy pages over :mod:`smartunion.privacy.service`.

* ``/console/privacy/requests``: open requests of members in scope with the decrypted
  note, accept / refuse (an accepted deletion anonymises the member).
* ``/console/privacy/register``: the record of processing activities, consent purposes and
  retention rules, straight from the code that enforces them (for the DPO).
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

from fastapi import Form, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from smartunion.errors import InvalidInput
from smartunion.members import repository as member_repo
from smartunion.members.models import Education, EmploymentForm, SkillLevel
from smartunion.privacy import service as privacy
from smartunion.privacy.models import SubjectRequest
from smartunion.privacy.register import PURPOSES, REGISTER
from smartunion.privacy.retention import RULES
from smartunion.security.crypto import FieldCrypto
from smartunion.security.permissions import Permission
from smartunion.security.principal import PermissionDenied
from smartunion.web.deps import Crypto, DbSession
from smartunion.web.labels import (
    field_label,
    purpose_title,
)
from smartunion.web.pagekit import (
    ConsolePage,
    Page,
    RecordId,
    caller,
    local_time,
    page_router,
)

router = page_router()


# Fields whose corrected value is one of a list (the enum's codes, labelled).
CHOICE_FIELDS: dict[str, type[StrEnum]] = {
    "education": Education,
    "skill_level": SkillLevel,
    "employment_form": EmploymentForm,
}


def _requests_page(
    page: Page,
    session: Session,
    crypto: FieldCrypto,
    *,
    resolved: bool = False,
    error: str | None = None,
    error_request: int | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    principal = caller(page)
    open_requests = privacy.open_requests(session, principal)
    # Ids from the scoped open_requests(); the names of their unions add nothing new.
    org_names, _ = member_repo.names_for(session, {r.org_id for r in open_requests}, set())
    rows = [
        {
            "request": r,
            "org_name": org_names.get(r.org_id, ""),
            "field": field_label(page, r.field),
            "note": privacy.request_note(crypto, r),
            "created": local_time(r.created_at, "%Y-%m-%d %H:%M"),
            # Accepting applies the corrected value typed here to the record.
            "editable": r.kind == "correction" and r.field in privacy.CORRECTABLE_BY_STAFF,
            "choices": [(v.value, page.t.enum(v)) for v in CHOICE_FIELDS[r.field]]
            if r.field in CHOICE_FIELDS
            else None,
        }
        for r in open_requests
    ]
    return page.render(
        "console/privacy_requests.html",
        status_code=status_code,
        rows=rows,
        resolved=resolved,
        error=error,
        error_request=error_request,
        nav="privacy_requests",
    )


@router.get("/console/privacy/requests")
def privacy_requests(
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    resolved: Annotated[str, Query(max_length=10)] = "",
) -> Response:
    return _requests_page(page, session, crypto, resolved=bool(resolved))


@router.post("/console/privacy/requests/{request_id}/resolve")
def privacy_request_resolve(
    request_id: RecordId,
    page: ConsolePage,
    session: DbSession,
    crypto: Crypto,
    accept: Annotated[str, Form(max_length=1)] = "",
    response: Annotated[str, Form(max_length=300)] = "",
    corrected: Annotated[str, Form(max_length=60)] = "",
    with_correction: Annotated[str, Form(max_length=1)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    principal = caller(page)
    # The form of a correction staff can apply carries the corrected-value box (and says
    # so); accepting it applies the value, refusing ignores it.
    apply = accept == "1" and with_correction == "1"
    try:
        request: SubjectRequest = privacy.resolve_request(
            session,
            principal,
            crypto,
            request_id,
            accept=accept == "1",
            response=response.strip(),
            corrected=corrected if apply else None,
        )
    except InvalidInput as exc:
        if exc.field != "corrected":
            raise
        # Nothing was written (the service checks before it changes anything).
        key = "prequests.error.missing" if not corrected.strip() else "prequests.error.invalid"
        return _requests_page(
            page, session, crypto, error=key, error_request=request_id, status_code=422
        )
    return RedirectResponse(f"/console/privacy/requests?resolved={request.id}", status_code=303)


# ---------------------------------------------------------------------------------------
# Console: record of processing activities


@router.get("/console/privacy/register")
def privacy_register(page: ConsolePage) -> Response:
    principal = caller(page)
    # Auditors (the DPO's role here) and administrators, as in the API.
    if not (principal.can(Permission.AUDIT_READ) or principal.can(Permission.USER_MANAGE)):
        raise PermissionDenied(Permission.AUDIT_READ)
    return page.render(
        "console/privacy_register.html",
        activities=REGISTER,
        purposes=[(p, purpose_title(page, p)) for p in PURPOSES.values()],
        rules=[(r, page.t(f"retention.{r.name}"), r.keep.days) for r in RULES],
        nav="privacy_register",
    )
