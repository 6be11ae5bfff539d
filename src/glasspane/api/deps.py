"""What every request can depend on: the services (database, settings, event bus, syncer) and
the authenticated user with a role check.  Tokens come in the Authorization header (the CLI,
scripts) or the HttpOnly cookie set at login (the page); a cookie-authenticated request that
changes anything must also carry the X-Glasspane header, which no other site can make a
browser send (CSRF)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
from fastapi import Depends, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from glasspane.inventory.db import Database
from glasspane.inventory.events import EventBus
from glasspane.inventory.generation import Generation
from glasspane.inventory.sync import Syncer
from glasspane.inventory.users import role_allows, token_digest, user_for_token
from glasspane.settings import Settings

COOKIE = "glasspane_token"
CSRF_HEADER = "x-glasspane"
# Threads reading listings from the database, at most, per application (docs/benchmarks.md):
# more than the machine's cores, so that one page waiting on the disk or on PostgreSQL does
# not hold the others up; few, since the ORM's work on the rows holds the interpreter lock,
# which every thread more takes from the event loop.  A separate pool from the default one
# (40 threads, the plain `def` routes') so that a burst of listings neither waits behind
# those routes nor takes every connection of the database's pool from them.
READ_THREADS = 4
# One user's share of them: however many listings one user (a script, a hostile viewer) asks
# for at once, the others' listings always find a thread; the rest of that user's wait.
READS_PER_USER = READ_THREADS // 2
T = TypeVar("T")


class TokenCache:
    """Who a token belongs to, remembered for a few seconds: the API's reads would otherwise
    each begin with a database lookup.  Logging out and removing a user clear it here at
    once; another instance sharing the database notices within TTL seconds."""

    TTL = 5.0
    SIZE = 10_000

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, CurrentUser]] = {}
        self._lookups: dict[str, asyncio.Future[CurrentUser | None]] = {}

    def get(self, secret: str) -> CurrentUser | None:
        found = self._known.get(token_digest(secret))
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, secret: str, user: CurrentUser) -> None:
        if len(self._known) >= self.SIZE:
            self._known.clear()
        self._known[token_digest(secret)] = (time.monotonic() + self.TTL, user)

    async def resolve(self, secret: str, found: Services) -> CurrentUser | None:
        """Who `secret` belongs to: remembered, else looked up in the database once however
        many requests carry it at that moment (when a busy token's entry expires, its
        requests would otherwise all go to the database together)."""
        known = self.get(secret)
        if known is not None:
            return known
        key = token_digest(secret)
        pending = self._lookups.get(key)
        if pending is None:
            pending = asyncio.ensure_future(run_in_threadpool(user_of, found, secret))
            self._lookups[key] = pending
            pending.add_done_callback(lambda _: self._lookups.pop(key, None))
        user = await asyncio.shield(pending)
        if user is not None:
            self.put(secret, user)
        return user

    def forget(self, secret: str) -> None:
        self._known.pop(token_digest(secret), None)

    def clear(self) -> None:
        self._known.clear()


@dataclass(frozen=True)
class CurrentUser:
    name: str
    role: str


@dataclass
class Services:
    settings: Settings
    database: Database
    bus: EventBus
    syncer: Syncer
    instance: str
    tokens: TokenCache = field(default_factory=TokenCache)
    generation: Generation = field(default_factory=Generation)
    reads: anyio.CapacityLimiter = field(
        default_factory=lambda: anyio.CapacityLimiter(READ_THREADS))
    # Each user's share of `reads`, by name (as many as the users table holds).
    user_reads: dict[str, anyio.CapacityLimiter] = field(default_factory=dict, init=False,
                                                         repr=False)
    # Listing totals by filters, for one inventory generation: a total does not depend on
    # the page, so paging through a large listing counts it once.
    _totals: tuple[int, dict[tuple[Any, ...], int]] = field(
        default_factory=lambda: (-1, {}), init=False, repr=False)

    def listings_waiting(self, user: str) -> int:
        """How many of `user`'s listings wait for their share of the listing threads."""
        limiter = self.user_reads.get(user)
        return limiter.statistics().tasks_waiting if limiter is not None else 0

    def totals_of(self, generation: int) -> dict[tuple[Any, ...], int]:
        """The totals counted under `generation` (a new, empty table once it moves on)."""
        if self._totals[0] != generation:
            self._totals = (generation, {})
        return self._totals[1]


async def off_loop(found: Services, user: CurrentUser, read: Callable[[], T]) -> T:
    """`read` (synchronous database work) on one of the listing threads: the event loop,
    and so every other request and the live event streams, goes on meanwhile.  `user`
    holds at most READS_PER_USER of those threads at once."""
    share = found.user_reads.setdefault(user.name, anyio.CapacityLimiter(READS_PER_USER))
    async with share:
        return await anyio.to_thread.run_sync(read, limiter=found.reads)


# The dependencies are coroutines: a plain function would cost each request a hop to the
# thread pool (and a wait for the GIL) per dependency, for a few dictionary lookups.
async def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def token_of(request: Request) -> tuple[str | None, bool]:
    """The caller's token, and whether it came in the page's cookie."""
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    cookie = request.cookies.get(COOKIE)
    return cookie, cookie is not None


async def authenticated(request: Request, found: Services = Depends(services)) -> CurrentUser:
    secret, from_cookie = token_of(request)
    if not secret:
        raise HTTPException(401, "authentication required: log in or send a bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    if from_cookie and request.method not in ("GET", "HEAD", "OPTIONS") and \
            request.headers.get(CSRF_HEADER) != "1":
        raise HTTPException(403, "a cookie-authenticated change needs the X-Glasspane: 1 "
                                 "header")
    current = await found.tokens.resolve(secret, found)
    if current is None:
        raise HTTPException(401, "invalid or expired token",
                            headers={"WWW-Authenticate": "Bearer"})
    request.state.user = current.name
    request.state.authenticated = True  # its refusals are the audit log's, not noise
    return current


def user_of(found: Services, secret: str) -> CurrentUser | None:
    """The user a token belongs to, from the database (None: no such token, expired, or
    its user disabled)."""
    with found.database.session() as session:
        user = user_for_token(session, secret)
        return None if user is None else CurrentUser(user.name, user.role)


def require(role: str) -> Callable[..., Awaitable[CurrentUser]]:
    """A dependency admitting users whose role includes `role`."""
    async def check(user: CurrentUser = Depends(authenticated)) -> CurrentUser:
        if not role_allows(user.role, role):
            article = "an" if user.role[0] in "aeiou" else "a"
            raise HTTPException(403, f"{user.name} is {article} {user.role}; this needs {role}")
        return user
    return check


viewer = require("viewer")
operator = require("operator")
admin = require("admin")


def audit_as(request: Request, action: str, object_type: str, object_name: str,
             detail: str = "") -> None:
    """Name what this request does, for the audit middleware to record with its outcome."""
    request.state.audit = (action, object_type, object_name, detail)


def audited(action: str, object_type: str, object_name: str = "") -> Any:
    """A route dependency naming the route's action for the audit log before anything else
    runs, so that refusals (401, 403, 409) are recorded under the right name too; `{param}`
    takes the path's values."""
    async def mark(request: Request) -> None:
        params = request.path_params
        request.state.audit = (action.format(**params), object_type,
                               object_name.format(**params), "")
    return Depends(mark)


def page(limit: int, offset: int, total: int, items: list[Any]) -> dict[str, Any]:
    return {"total": total, "limit": limit, "offset": offset, "items": items}
