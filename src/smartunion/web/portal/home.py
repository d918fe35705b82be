"""Member portal home (``/m/``): the member's own card."""

from __future__ import annotations

from fastapi import Response

from smartunion.members import service as members
from smartunion.web.deps import (
    ClientIp,
    Crypto,
    DbSession,
)
from smartunion.web.pagekit import (
    PortalPage,
    caller,
    page_router,
    years_since,
)

router = page_router()


@router.get("/m/")
def portal_home(page: PortalPage, session: DbSession, crypto: Crypto, ip: ClientIp) -> Response:
    me = members.get_self(session, caller(page), crypto, client_ip=ip)
    return page.render("portal/home.html", m=me, member_years=years_since(me.join_date))
