"""``create_app()``: the API routers, the built browser UI, the error shape and the canary loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

from anyio import to_thread
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import DBAPIError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException

from backend.auth.router import auth_router, tokens_router
from backend.datasets.router import router as datasets_router
from backend.db.session import session_factory
from backend.errors import StudioError
from backend.headers import SecurityHeaders
from backend.health import router as health_router
from backend.jobs.broker import send_canaries
from backend.jobs.canary import CanaryState, canary_round
from backend.jobs.router import router as jobs_router
from backend.models.router import artifacts_router
from backend.models.router import router as models_router
from backend.settings import get_settings
from backend.specs.estimate import router as estimate_router
from backend.specs.preview import router as preview_router
from backend.specs.router import router as specs_router

log = logging.getLogger(__name__)


def _send_round(state: CanaryState) -> None:
    settings = get_settings()
    with session_factory()() as session:
        canary_round(
            session,
            state,
            settings.worker_live_seconds,
            lambda queue, count: send_canaries(queue, count, settings.worker_live_seconds),
            retry_seconds=settings.canary_retry_seconds,
        )


async def _canary_loop(interval: float) -> None:
    """Keep canaries on every queue; a worker that consumes one is reported live by /api/health."""
    state = CanaryState()
    while True:
        try:
            await to_thread.run_sync(_send_round, state)
        except Exception as exc:
            log.warning("could not send canaries: %s", exc)
        await asyncio.sleep(interval)


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    task = asyncio.create_task(_canary_loop(settings.canary_interval_seconds))
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _error(
    status: int, detail: Any, code: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"detail": detail, "code": code, **extra}, status_code=status, headers=headers)


_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    429: "rate_limited",
}


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(StudioError)
    async def studio_error(_: Request, exc: StudioError) -> JSONResponse:
        return _error(exc.status_code, exc.detail, exc.code, exc.headers, **exc.extra)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return _error(exc.status_code, exc.detail, _CODES.get(exc.status_code, "error"), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        first = errors[0] if errors else {"loc": [], "msg": "invalid request"}
        where = ".".join(str(p) for p in first["loc"][1:]) or ".".join(str(p) for p in first["loc"])
        return _error(422, f"{where}: {first['msg']}", "validation_error", errors=errors)

    @app.exception_handler(OperationalError)
    @app.exception_handler(DBAPIError)
    async def database_error(_: Request, exc: DBAPIError) -> JSONResponse:
        log.error("database error: %s", exc)
        return _error(
            503,
            "the database is unavailable, try again shortly",
            "database_unavailable",
            {"Retry-After": "5"},
        )


def _mount_frontend(app: FastAPI, dist: Path) -> None:
    """Serve the built UI at ``/``; unknown non-API paths get index.html so client-side routes work."""
    index = dist / "index.html"
    if not index.is_file():
        log.warning("no built frontend at %s: run `make frontend`", dist)
        return
    if (dist / "assets").is_dir():
        app.mount("/assets", StaticFiles(directory=dist / "assets"), name="assets")

    @app.get("/{path:path}", include_in_schema=False)
    async def spa(path: str) -> FileResponse:
        if path.startswith("api/"):
            raise StarletteHTTPException(404, f"no API route /{path}")
        candidate = (dist / path).resolve()
        if path and candidate.is_file() and candidate.is_relative_to(dist.resolve()):
            return FileResponse(candidate)
        return FileResponse(index)


def create_app() -> FastAPI:
    settings = get_settings()
    app = FastAPI(
        title="Studio",
        version="1",
        openapi_url="/api/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    _install_error_handlers(app)
    for router in (health_router, auth_router, tokens_router, jobs_router, datasets_router):
        app.include_router(router)
    for router in (specs_router, preview_router, estimate_router, models_router, artifacts_router):
        app.include_router(router)
    _mount_frontend(app, settings.frontend_dir)
    app.add_middleware(SecurityHeaders)
    return app
