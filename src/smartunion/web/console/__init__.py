"""The staff console (``/console``, and the staff log-in): one module per domain.

Each module has its own ``router`` (made by :func:`smartunion.web.pagekit.page_router`);
this package gathers them into one, which the app includes. A new capability adds
``console/<domain>.py`` and names it below.
"""

from __future__ import annotations

from smartunion.web.console import (
    alerts,
    audit,
    auth,
    dashboard,
    enterprises,
    exports,
    member_forms,
    members,
    orgs,
    privacy,
    stats,
    users,
)
from smartunion.web.pagekit import add_not_found_page, page_router

# member_forms before members: /console/members/new is not a member id.
MODULES = (
    auth,
    dashboard,
    orgs,
    member_forms,
    members,
    enterprises,
    audit,
    alerts,
    exports,
    privacy,
    stats,
    users,
)

router = page_router()
for _module in MODULES:
    router.include_router(_module.router)
# Last: addresses under /console/ that no page above claims get a 404 page.
add_not_found_page(router, "/console")
