"""One worker thread per API request: the caller, the handler and the commit together.

A sync FastAPI endpoint that takes ``ApiPrincipal`` and ``DbSession`` costs four hops
between the event loop and the worker threads: one to resolve the caller, one for the
handler, one to validate its answer and one to commit. Each hop is a queue hand-over and a
wake-up under the GIL; under load they were a tenth of the server's CPU and much of its
latency. ``OneThreadRoute`` rewrites such an endpoint, when it is registered, into an async
one that makes a single hop: in one worker thread it opens the session, resolves the caller,
runs the handler and ends the unit of work (``db.finish``: commit, or roll back on an
exception), so the answer is still committed before it is sent and a failed commit is
still an error answer. FastAPI then validates and renders the answer on the event loop (an
async endpoint's answer is not sent to a thread), with no database access left to do:
sessions do not expire their objects on commit.

The rewritten endpoint keeps the original's name, docs, parameters and return type, so
validation, OpenAPI and the bearer security scheme are unchanged. An endpoint is left as it
is when something other than its own ``ApiPrincipal``/``DbSession`` parameters needs the
session (a dependency of its own that takes ``DbSession``): that dependency would otherwise
get a second session.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Annotated, Any, get_args, get_origin

from fastapi import Depends, params
from fastapi.dependencies.utils import get_typed_return_annotation, get_typed_signature
from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool

from smartunion.db import finish
from smartunion.security.principal import Principal
from smartunion.web.deps import api_principal, authenticate, get_session, get_state, oauth2
from smartunion.web.state import AppState

_STATE = "su_unit_state_"
_BEARER = "su_unit_bearer_"


def _dependency(annotation: Any) -> Callable[..., Any] | None:
    """The callable of ``Annotated[..., Depends(f)]``, or None."""
    if get_origin(annotation) is not Annotated:
        return None
    for meta in get_args(annotation)[1:]:
        if isinstance(meta, params.Depends):
            return meta.dependency
    return None


def _needs_session(call: Callable[..., Any]) -> bool:
    """Whether ``call`` (a dependency) takes a DB session, directly or further down."""
    if call in (get_session, api_principal):
        return True
    for param in get_typed_signature(call).parameters.values():
        dep = _dependency(param.annotation)
        if dep is not None and _needs_session(dep):
            return True
    return False


def one_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """``endpoint`` rewritten to resolve its caller, run and commit in one worker thread.

    Returns ``endpoint`` unchanged when it is async, takes neither ``DbSession`` nor
    ``ApiPrincipal``, or has another dependency that needs the session.
    """
    if inspect.iscoroutinefunction(endpoint):
        return endpoint
    signature = get_typed_signature(endpoint)
    session_param = principal_param = None
    kept: list[inspect.Parameter] = []
    for param in signature.parameters.values():
        dep = _dependency(param.annotation)
        if dep is get_session:
            session_param = param.name
        elif dep is api_principal:
            principal_param = param.name
        elif dep is not None and _needs_session(dep):
            return endpoint
        else:
            kept.append(param)
    if session_param is None and principal_param is None:
        return endpoint

    extra = [
        inspect.Parameter(
            _STATE,
            inspect.Parameter.KEYWORD_ONLY,
            annotation=Annotated[AppState, Depends(get_state)],
        )
    ]
    if principal_param is not None:
        extra.append(
            inspect.Parameter(
                _BEARER,
                inspect.Parameter.KEYWORD_ONLY,
                annotation=Annotated[str | None, Depends(oauth2)],
            )
        )

    def unit(state: AppState, token: str | None, values: dict[str, Any]) -> Any:
        session = state.db.sessionmaker()
        try:
            if principal_param is not None:
                principal: Principal = authenticate(session, state, token)
                values[principal_param] = principal
            if session_param is not None:
                values[session_param] = session
            result = endpoint(**values)
        except BaseException as exc:
            finish(session, exc)
            raise
        finish(session, None)
        return result

    @functools.wraps(endpoint)
    async def in_one_thread(**values: Any) -> Any:
        state: AppState = values.pop(_STATE)
        token: str | None = values.pop(_BEARER, None)
        if principal_param is not None and not token:
            authenticate(None, state, None)  # raises the 401 without a thread
        return await run_in_threadpool(unit, state, token, values)

    # FastAPI reads the parameters from __signature__ (already evaluated, so the string
    # annotations of ``from __future__ import annotations`` need no module globals).
    del in_one_thread.__wrapped__
    in_one_thread.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [
            *(p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in kept),
            *extra,
        ],
        return_annotation=get_typed_return_annotation(endpoint) or inspect.Signature.empty,
    )
    return in_one_thread


class OneThreadRoute(APIRoute):
    """An API route whose sync endpoint runs as one unit of work in one worker thread."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, one_thread(endpoint), **kwargs)
