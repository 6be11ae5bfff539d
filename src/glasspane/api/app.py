"""The application: routers under /api/v1, the project's errors turned into HTTP statuses in
one place, bodies capped, every change audited, and the background parts (task worker,
inventory sync, the PostgreSQL event listener) started and stopped with it."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glasspane import __version__
from glasspane.api.deps import Services
from glasspane.api.routers import actions, audit, auth, events, inventory, live, tasks, users
from glasspane.errors import (
    CommandFailed,
    Conflict,
    GlasspaneError,
    HostError,
    HostUnreachable,
    ImageError,
    NotFound,
    OutputError,
    UsageError,
)
from glasspane.inventory import audit as audit_log
from glasspane.inventory import handlers
from glasspane.inventory.db import Database
from glasspane.inventory.events import EventBus
from glasspane.inventory.sync import Syncer
from glasspane.inventory.tasks import Worker
from glasspane.settings import Settings

API = "/api/v1"
MAX_BODY = 1 << 20
log = logging.getLogger("glasspane.api")

# The one place where the exception tree meets HTTP.
STATUS: list[tuple[type[GlasspaneError], int]] = [
    (NotFound, 404), (Conflict, 409), (UsageError, 400), (ImageError, 422), (OutputError, 409),
    (HostUnreachable, 503), (HostError, 502), (CommandFailed, 502), (GlasspaneError, 500)]


def status_for(exc: GlasspaneError) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


class BodyLimit:
    """413 for request bodies over MAX_BODY, declared or streamed."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    @staticmethod
    async def _refuse(send: Send) -> None:
        response = JSONResponse({"detail": f"request body over {MAX_BODY} bytes"}, 413)
        await send({"type": "http.response.start", "status": 413,
                    "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class _TooLarge(Exception):
    pass


def _outcome(status: int) -> str:
    if status == 202:
        return "accepted"
    if status < 400:
        return "succeeded"
    if status in (401, 403, 429):
        return "denied"
    return "rejected" if status < 500 else "failed"


def create_app(settings: Settings, database: Database, *, background: bool = True,
               instance: str | None = None, sync_interval: float = 10) -> FastAPI:
    bus = EventBus()
    bus.attach(database.sessions)
    handlers.configure(settings)
    found = Services(settings, database, bus, Syncer(database, settings, sync_interval),
                     instance or socket.gethostname())
    worker = Worker(database, found.instance)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if background:
            worker.start()
            found.syncer.start()
            if database.is_postgres:
                bus.listen_postgres(database.engine.url.set(drivername="postgresql")
                                    .render_as_string(hide_password=False))
        yield
        bus.stop()
        if background:
            worker.stop()
            found.syncer.stop()

    app = FastAPI(title="glasspane", version=__version__, lifespan=lifespan,
                  openapi_url=f"{API}/openapi.json", docs_url=f"{API}/docs", redoc_url=None)
    app.state.services = found
    app.state.worker = worker
    app.state.login_limiter = auth.LoginLimiter()
    for module in (auth, users, inventory, live, actions, tasks, events, audit):
        app.include_router(module.router, prefix=API)

    static = Path(__file__).resolve().parent.parent / "web" / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get(f"{API}/health", tags=["health"])
    def health() -> dict[str, Any]:
        with database.session() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__,
                "database": "postgresql" if database.is_postgres else "sqlite",
                "instance": found.instance}

    @app.exception_handler(GlasspaneError)
    async def glasspane_error(_: Request, exc: GlasspaneError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_for(exc))

    @app.middleware("http")
    async def audit_changes(request: Request,
                            call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        response = await call_next(request)
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return response
        action, object_type, object_name, detail = getattr(
            request.state, "audit", (f"{request.method} {request.url.path}", "api",
                                     request.url.path, ""))
        task = getattr(request.state, "task", None)
        if task is not None:
            detail = f"task {task}" + (f"; {detail}" if detail else "")
        user = getattr(request.state, "user", "anonymous")

        def record() -> None:
            with database.session() as session:
                audit_log.record(session, user, action, object_type, object_name,
                                 _outcome(response.status_code), response.status_code, detail)
        await run_in_threadpool(record)
        return response

    app.add_middleware(BodyLimit)
    return app
