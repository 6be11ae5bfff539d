"""The application: routers under /api/v1, the project's errors turned into HTTP statuses in
one place, security headers on every answer, bodies capped, every change audited, the
server's limits (`api.limits`) in `app.state`, and the background parts (task worker,
inventory sync, the PostgreSQL event listener) started and stopped with it."""

from __future__ import annotations

import dataclasses
import logging
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from sqlalchemy import text

from glasspane import __version__
from glasspane.api.deps import Services
from glasspane.api.limits import LoginGate, LoginLimiter, ServerLimits
from glasspane.api.listing_cache import ListingCache
from glasspane.api.middleware import API, AuditChanges, BodyLimit, NoNul, SecurityHeaders
from glasspane.api.results import Health
from glasspane.api.routers import (
    apps,
    audit,
    auth,
    consoles,
    containers,
    events,
    hosts,
    images,
    tasks,
    templates,
    users,
    vms,
)
from glasspane.api.schemas import errors
from glasspane.errors import (
    Busy,
    CommandFailed,
    Conflict,
    Forbidden,
    GlasspaneError,
    HostError,
    HostRefused,
    HostUnreachable,
    ImageError,
    NoSpace,
    NotFound,
    OutputError,
    RateLimited,
    RequestTimeout,
    Unavailable,
    UsageError,
)
from glasspane.inventory import (
    handlers,
    store_handlers,  # noqa: F401 - registers the store's tasks
)
from glasspane.inventory.audit import NoiseBudget
from glasspane.inventory.db import Database
from glasspane.inventory.events import EventBus
from glasspane.inventory.sync import Syncer, register_hosts
from glasspane.inventory.tasks import Worker
from glasspane.settings import Settings

log = logging.getLogger("glasspane.api")

# The one place where the exception tree meets HTTP.
STATUS: list[tuple[type[GlasspaneError], int]] = [
    (NotFound, 404), (Conflict, 409), (Forbidden, 403), (RequestTimeout, 408),
    (UsageError, 400), (ImageError, 422), (NoSpace, 507), (OutputError, 409),
    (RateLimited, 429), (Busy, 503),
    (HostRefused, 422), (HostUnreachable, 503), (HostError, 502), (CommandFailed, 502),
    (Unavailable, 503),
    (GlasspaneError, 500)]


def status_for(exc: GlasspaneError) -> int:
    return next(code for kind, code in STATUS if isinstance(exc, kind))


def create_app(settings: Settings, database: Database, *, background: bool = True,
               instance: str | None = None, sync_interval: float = 10,
               cache_listings: bool = True, limits: ServerLimits | None = None) -> FastAPI:
    limits = limits or ServerLimits()
    # The registered hosts are in this database: every part reaching them by the settings.
    settings = dataclasses.replace(settings, database_url=database.url)
    bus = EventBus()
    bus.attach(database.sessions)
    handlers.configure(settings)
    found = Services(settings, database, bus, Syncer(database, settings, sync_interval),
                     instance or socket.gethostname())
    found.generation.attach(database.sessions)
    bus.on_notify.append(found.generation.bump)
    worker = Worker(database, found.instance)
    gate = LoginGate(limits)

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
        gate.close()
        if background:
            worker.stop()
            found.syncer.stop()

    # No Swagger UI page: FastAPI's loads its scripts from a CDN, and a script on this
    # origin acts with the signed-in user's cookie (the CSRF header is no bar to it).
    app = FastAPI(title="glasspane", version=__version__, lifespan=lifespan,
                  openapi_url=f"{API}/openapi.json", docs_url=None, redoc_url=None)
    app.state.services = found
    app.state.worker = worker
    app.state.limits = limits
    app.state.login_limiter = LoginLimiter(time.monotonic)
    app.state.login_gate = gate
    app.state.streams = events.OpenStreams(limits.streams_per_user)
    for module in (auth, users, hosts, vms, containers, apps, templates, images, tasks,
                   events, audit, consoles):
        app.include_router(module.router, prefix=API)

    static = Path(__file__).resolve().parent.parent / "web" / "static"
    app.mount("/static", StaticFiles(directory=static), name="static")

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(static / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get(f"{API}/health", tags=["health"], response_model=Health,
             responses=errors(400))
    def health() -> dict[str, Any]:
        with database.session() as session:
            session.execute(text("SELECT 1"))
        return {"status": "ok", "version": __version__,
                "database": "postgresql" if database.is_postgres else "sqlite",
                "instance": found.instance}

    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        # Where and why, not what was there: FastAPI's own answer echoes each refused value
        # (the whole body, for a field missing), passwords and extra variables included.
        issues = [{key: value for key, value in issue.items() if key not in ("input", "url")}
                  for issue in exc.errors()]
        return JSONResponse({"detail": jsonable_encoder(issues)}, 422)

    @app.exception_handler(GlasspaneError)
    async def glasspane_error(_: Request, exc: GlasspaneError) -> JSONResponse:
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else None
        return JSONResponse({"detail": str(exc)}, status_for(exc), headers=headers)

    # The last added is the outermost: the audit sees the body limit's refusals, and
    # every answer, cached or refused, gets the security headers.
    app.add_middleware(NoNul)  # inside BodyLimit: the body it reads whole is capped
    app.add_middleware(BodyLimit, timeout=limits.body_timeout)
    app.add_middleware(AuditChanges, database=database, budget=NoiseBudget())
    if cache_listings:
        app.add_middleware(ListingCache, services=found,
                           ttl=10.0 if database.is_postgres else 60.0)
    app.add_middleware(SecurityHeaders)
    return app
