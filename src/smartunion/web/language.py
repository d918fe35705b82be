"""The language switch (``/lang/<code>``), shared by the console and the member portal."""

from __future__ import annotations

from typing import Annotated

from fastapi import Query, Response
from fastapi.responses import RedirectResponse

from smartunion import i18n
from smartunion.errors import NotFound
from smartunion.web.deps import State
from smartunion.web.pagekit import (
    LANG_COOKIE,
    page_router,
    safe_next,
)

router = page_router()


@router.get("/lang/{code}")
def set_language(
    code: str,
    state: State,
    next_url: Annotated[str | None, Query(alias="next", max_length=500)] = None,
) -> Response:
    lang = i18n.normalise(code)
    if lang is None:
        raise NotFound("language")
    response = RedirectResponse(safe_next(next_url, "/"), status_code=303)
    response.set_cookie(
        LANG_COOKIE,
        lang,
        max_age=365 * 24 * 3600,
        httponly=True,
        samesite="lax",
        secure=state.settings.cookie_secure,
        path="/",
    )
    return response
