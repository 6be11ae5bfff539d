"""The application: routers under /api/v1, the project's errors turned into HTTP statuses in
one place, bodies capped, every change audited, and the background parts (task worker,
inventory sync, the PostgreSQL event listener) started and stopped with it."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from glasspane import __version__
from glasspane.api.deps import Services
from glasspane.api.listing_cache import ListingCache
from glasspane.api.middleware import API, AuditChanges, BodyLimit
from glasspane.api.routers import (
    apps,
    audit,
    auth,
    containers,
    events,
    hosts,
    images,
    tasks,
    templates,
    users,
    vms,
)
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
from glasspane.inventory import (
    handlers,
    store_handlers,  # noqa: F401 - registers the store's tasks
)
from glasspane.inventory.db import Database
from glasspane.inventory.events import EventBus
from glasspane.inventory.sync import Syncer, register_hosts
from glasspane.inventory.tasks import Worker
from glasspane.settings import Settings

log = logging.getLogger("glasspane.api")

# The one place where the exception tree meets HTTP.
STATUS: list[tuple[type[GlasspaneError], int]] = [
    (NotFound, 404), (Conflict, 409), (UsageError, 400), (ImageError, 422), (OutputError, 409),
    (HostUnreachable, 503), (HostError, 502), (CommandFailed, 502), (GlasspaneError, 500)]


def status_for(exc: GlasspaneError) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def create_app(settings: Settings, database: Database, *, background: bool = True,
               instance: str | None = None, sync_interval: float = 10,
               cache_listings: bool = True) -> FastAPI:
    bus = EventBus()
    bus.attach(database.sessions)
    handlers.configure(settings)
    found = Services(settings, database, bus, Syncer(database, settings, sync_interval),
                     instance or socket.gethostname())
    found.generation.attach(database.sessions)
    bus.on_notify.append(found.generation.bump)
    worker = Worker(database, found.instance)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        register_hosts(database, settings)  # known from the first answer, before any pass
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
    for module in (auth, users, hosts, vms, containers, apps, templates, images, tasks,
                   events, audit):
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

    app.add_middleware(AuditChanges, database=database)
    app.add_middleware(BodyLimit)
    if cache_listings:
        app.add_middleware(ListingCache, services=found,
                           ttl=10.0 if database.is_postgres else 60.0)
    return app
