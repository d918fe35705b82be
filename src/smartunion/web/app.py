"""The ASGI application: API, console, member portal, offline docs, static assets."""

from __future__ import annotations

import importlib.resources
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import quote

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

import smartunion.models  # noqa: F401  (the composition root loads every model once)
from smartunion import __version__
from smartunion.config import Settings, get_settings
from smartunion.db import WalCheckpointer, is_unique_violation
from smartunion.errors import Conflict, InvalidInput, NotFound, TooManyRequests
from smartunion.security.checkpoints import checkpointer_for
from smartunion.security.guard import AccessSuspended, QuotaExceeded
from smartunion.security.passwords import WeakPassword
from smartunion.security.principal import PermissionDenied
from smartunion.security.sealer import AuditSealer
from smartunion.security.service import (
    AccountSuspended,
    AuthenticationFailed,
    EnrolmentRequired,
    SecondFactorRequired,
    UserError,
    WrongPassword,
)
from smartunion.stats.privacy import BudgetExhausted
from smartunion.validation import ValidationError as FieldValidationError
from smartunion.web import console, language, portal
from smartunion.web.admission import Admission, Gate
from smartunion.web.api import router as api_router
from smartunion.web.deps import LoginRequired
from smartunion.web.state import AppState

STATIC_DIR = Path(__file__).with_name("static")
# fastapi-offline ships swagger-ui 5 (renders OpenAPI 3.1): the docs page works offline.
SWAGGER_DIR = Path(str(importlib.resources.files("fastapi_offline") / "static"))
access_log = logging.getLogger("smartunion.access")

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)


DOCS_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SmartUnion API</title>
<link rel="stylesheet" href="/static/swagger/swagger-ui.css">
<link rel="icon" href="/static/img/logo.svg" type="image/svg+xml"></head>
<body><div id="swagger-ui"></div>
<script src="/static/swagger/swagger-ui-bundle.js"></script>
<script src="/static/js/swagger-init.js"></script></body></html>
"""


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(NotFound)
    async def _not_found(_: Request, exc: NotFound) -> Response:
        return _error(404, str(exc))

    @app.exception_handler(PermissionDenied)
    async def _denied(_: Request, exc: PermissionDenied) -> Response:
        return _error(403, str(exc))

    @app.exception_handler(Conflict)
    async def _conflict(_: Request, exc: Conflict) -> Response:
        return _error(409, str(exc))

    @app.exception_handler(InvalidInput)
    async def _invalid(_: Request, exc: InvalidInput) -> Response:
        return JSONResponse(
            {"detail": [{"loc": ["body", exc.field], "msg": exc.reason}]}, status_code=422
        )

    @app.exception_handler(FieldValidationError)
    async def _invalid_field(_: Request, exc: FieldValidationError) -> Response:
        return JSONResponse(
            {"detail": [{"loc": ["body", exc.field], "msg": exc.reason}]}, status_code=422
        )

    @app.exception_handler(WeakPassword)
    async def _weak(_: Request, exc: WeakPassword) -> Response:
        return JSONResponse(
            {"detail": [{"loc": ["body", "password"], "msg": str(exc)}]}, status_code=422
        )

    @app.exception_handler(UserError)
    async def _user_error(_: Request, exc: UserError) -> Response:
        return JSONResponse({"detail": [{"loc": ["body"], "msg": str(exc)}]}, status_code=422)

    @app.exception_handler(TooManyRequests)
    async def _too_many(_: Request, exc: TooManyRequests) -> Response:
        return _error(429, str(exc))

    @app.exception_handler(AuthenticationFailed)
    async def _auth_failed(_: Request, exc: AuthenticationFailed) -> Response:
        return _error(401, "incorrect username or password", {"WWW-Authenticate": "Bearer"})

    @app.exception_handler(SecondFactorRequired)
    async def _otp_needed(_: Request, exc: SecondFactorRequired) -> Response:
        return _error(401, "otp_required", {"WWW-Authenticate": 'Bearer error="otp_required"'})

    @app.exception_handler(EnrolmentRequired)
    async def _enrol_needed(_: Request, exc: EnrolmentRequired) -> Response:
        return _error(403, "two-factor enrolment required: enrol in the staff console first")

    @app.exception_handler(AccountSuspended)
    async def _account_suspended(_: Request, exc: AccountSuspended) -> Response:
        return _error(403, exc.message())

    @app.exception_handler(WrongPassword)
    async def _wrong_password(_: Request, exc: WrongPassword) -> Response:
        return _error(403, str(exc))

    @app.exception_handler(AccessSuspended)
    async def _suspended(_: Request, exc: AccessSuspended) -> Response:
        return _error(403, f"{exc}; contact the security officer")

    @app.exception_handler(BudgetExhausted)
    async def _budget(_: Request, exc: BudgetExhausted) -> Response:
        return _error(429, str(exc))

    @app.exception_handler(QuotaExceeded)
    async def _quota(_: Request, exc: QuotaExceeded) -> Response:
        return _error(429, str(exc))

    @app.exception_handler(LoginRequired)
    async def _login(_: Request, exc: LoginRequired) -> Response:
        target = "/m/login" if exc.portal == "member" else "/login"
        return RedirectResponse(f"{target}?next={quote(exc.next_url)}", status_code=303)

    @app.exception_handler(RequestValidationError)
    async def _validation(_: Request, exc: RequestValidationError) -> Response:
        # Echoing "input" back would put submitted ID numbers into responses and logs.
        errors = [
            {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
            for e in exc.errors()
        ]
        return JSONResponse({"detail": errors}, status_code=422)


class SecurityHeaders:
    """Security headers on every answer, and the access log (path only, never the query
    string: it may carry names or numbers). Pure ASGI: a ``BaseHTTPMiddleware`` costs a
    task and a stream per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        private = path.startswith(("/api/", "/console", "/m/"))
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "same-origin")
                if private:
                    headers.setdefault("Cache-Control", "no-store")
                if https:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000")
                access_log.info(
                    "%s %s %d %.1fms",
                    scope["method"],
                    path,
                    message["status"],
                    (time.perf_counter() - started) * 1000,
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)


def _install_integrity_handler(app: FastAPI) -> None:
    @app.exception_handler(IntegrityError)
    async def _integrity(_: Request, exc: IntegrityError) -> Response:
        # Two requests creating the same username or ID number at once: both passed the
        # "is it taken?" check, the database's unique constraint stops the second. That is
        # a conflict for the caller to resolve, as when the check catches it.
        if is_unique_violation(exc):
            return _error(409, "conflict: a record with the same unique value already exists")
        raise exc


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    state: AppState = app.state.smartunion
    # Sync handlers run in AnyIO's thread pool; size it with the admission limit (and the
    # connection pool follows from it, Settings.pool_size).
    anyio.to_thread.current_default_thread_limiter().total_tokens = (
        state.settings.worker_threads + 2
    )
    checkpointer = WalCheckpointer(state.db)
    checkpointer.start()
    sealer = None
    if state.settings.audit_seal_interval > 0 and state.db.audit_key:
        sealer = AuditSealer(
            state.db,
            state.db.audit_key,
            interval=state.settings.audit_seal_interval,
            checkpointer=checkpointer_for(state.settings, state.db.audit_key),
        )
        sealer.start()
    try:
        yield
    finally:
        if sealer is not None:
            await anyio.to_thread.run_sync(sealer.stop)
        await anyio.to_thread.run_sync(checkpointer.stop)


def create_app(settings: Settings | None = None, *, state: AppState | None = None) -> FastAPI:
    settings = settings or get_settings()
    app = FastAPI(
        lifespan=_lifespan,
        title="SmartUnion API",
        version=__version__,
        description=(
            "智慧工会平台 JSON API. Authenticate with `POST /api/v1/auth/token` (OAuth2 password "
            "flow) and send `Authorization: Bearer <token>`. Personal data is masked; plaintext "
            "only through the audited `reveal` endpoint."
        ),
        docs_url=None,
        redoc_url=None,
    )
    app.state.smartunion = state or AppState.from_settings(settings)
    gate = app.state.gate = Gate(
        limit=settings.worker_threads,
        queue=settings.queue_size,
        wait=settings.queue_wait_seconds,
    )

    app.add_middleware(SecurityHeaders)

    _install_error_handlers(app)
    _install_integrity_handler(app)
    app.include_router(api_router)
    app.include_router(console.router)
    app.include_router(portal.router)
    app.include_router(language.router)
    # Mounts match in order: the longer prefix first, or "/static" answers /static/swagger/…
    # with a 404 from its own folder and /docs stays blank.
    app.mount("/static/swagger", StaticFiles(directory=SWAGGER_DIR), name="swagger")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        # async and database-free: it answers even when every worker thread is busy.
        return {"status": "ok"}

    @app.get("/readyz", tags=["ops"], summary="Readiness: the database answers")
    async def readyz() -> Response:
        app_state: AppState = app.state.smartunion
        load = gate.snapshot()
        try:
            with anyio.fail_after(app_state.settings.queue_wait_seconds):
                await anyio.to_thread.run_sync(_ping, app_state, limiter=_probe_threads)
        except Exception as exc:  # any failure means "not ready"; say which kind
            return JSONResponse(
                {"status": "unavailable", "database": type(exc).__name__, **load},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        return JSONResponse({"status": "ready", "database": "ok", **load})

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        # Not FastAPI's page: that one has an inline script, which our CSP forbids.
        return HTMLResponse(DOCS_HTML)

    @app.get("/", include_in_schema=False)
    def root() -> Response:
        return RedirectResponse("/console", status_code=303)

    # Added last, so it is the outermost of the app's middleware.
    app.add_middleware(Admission, gate=gate)
    if settings.trusted_proxies:
        # Outside everything else: the client address (log-in limit, audit) and the scheme
        # (HSTS) are the proxy's word only when the connection comes from a proxy we
        # were told to trust. The server itself believes no forwarded header (``serve``).
        app.add_middleware(ProxyHeadersMiddleware, trusted_hosts=settings.trusted_proxies)
    return app


# The readiness probe has threads of its own: it must not queue behind the requests whose
# capacity it reports.
_probe_threads = anyio.CapacityLimiter(2)


def _ping(state: AppState) -> None:
    with state.db.engine.connect() as conn:
        conn.execute(text("SELECT 1"))
