"""The member portal (H5, ``/m/``): one module per domain, as in the console.

Each module has its own ``router``; this package gathers them into one, which the app
includes. A new capability adds ``portal/<domain>.py`` and names it below.
"""

from __future__ import annotations

from smartunion.web.pagekit import add_not_found_page, page_router
from smartunion.web.portal import auth, home, privacy

MODULES = (auth, home, privacy)

router = page_router()
for _module in MODULES:
    router.include_router(_module.router)
# Last: addresses under /m/ that no page above claims get a 404 page.
add_not_found_page(router, "/m")
