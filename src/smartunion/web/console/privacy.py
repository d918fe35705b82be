"""Console privacy pages over :mod:`smartunion.privacy.service`.

* ``/console/privacy/requests``: open requests of members in scope with the decrypted
  note, accept / refuse (an accepted deletion anonymises the member).
* ``/console/privacy/register``: the record of processing activities, consent purposes and
  retention rules, straight from the code that enforces them (for the DPO).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Form, Query, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from smartunion.members import repository as member_repo
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


def _requests_page(
    page: Page, session: Session, crypto: FieldCrypto, *, resolved: bool = False
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
        }
        for r in open_requests
    ]
    return page.render(
        "console/privacy_requests.html", rows=rows, resolved=resolved, nav="privacy_requests"
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
    csrf_token: Annotated[str, Form(max_length=128)] = "",
) -> Response:
    page.check_csrf(csrf_token)
    request: SubjectRequest = privacy.resolve_request(
        session,
        caller(page),
        crypto,
        request_id,
        accept=accept == "1",
        response=response.strip(),
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
