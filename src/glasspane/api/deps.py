"""What every request can depend on: the services (database, settings, event bus, syncer) and
the authenticated user with a role check.  Tokens come in the Authorization header (the CLI,
scripts) or the HttpOnly cookie set at login (the page); a cookie-authenticated request that
changes anything must also carry the X-Glasspane header, which no other site can make a
browser send (CSRF)."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, HTTPException, Request

from glasspane.inventory.db import Database
from glasspane.inventory.events import EventBus
from glasspane.inventory.sync import Syncer
from glasspane.inventory.users import role_allows, user_for_token
from glasspane.settings import Settings

COOKIE = "glasspane_token"
CSRF_HEADER = "x-glasspane"


class TokenCache:
    """Who a token belongs to, remembered for a few seconds: the API's reads would otherwise
    each begin with a database lookup.  Logging out and removing a user clear it here at
    once; another instance sharing the database notices within TTL seconds."""

    TTL = 5.0
    SIZE = 10_000

    def __init__(self) -> None:
        self._known: dict[str, tuple[float, CurrentUser]] = {}

    @staticmethod
    def _key(secret: str) -> str:
        return hashlib.sha256(secret.encode()).hexdigest()

    def get(self, secret: str) -> CurrentUser | None:
        found = self._known.get(self._key(secret))
        if found is None or found[0] < time.monotonic():
            return None
        return found[1]

    def put(self, secret: str, user: CurrentUser) -> None:
        if len(self._known) >= self.SIZE:
            self._known.clear()
        self._known[self._key(secret)] = (time.monotonic() + self.TTL, user)

    def forget(self, secret: str) -> None:
        self._known.pop(self._key(secret), None)

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


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def _token(request: Request) -> tuple[str | None, bool]:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip(), False
    cookie = request.cookies.get(COOKIE)
    return cookie, cookie is not None


def authenticated(request: Request, found: Services = Depends(services)) -> CurrentUser:
    secret, from_cookie = _token(request)
    if not secret:
        raise HTTPException(401, "authentication required: log in or send a bearer token",
                            headers={"WWW-Authenticate": "Bearer"})
    if from_cookie and request.method not in ("GET", "HEAD", "OPTIONS") and \
            request.headers.get(CSRF_HEADER) != "1":
        raise HTTPException(403, "a cookie-authenticated change needs the X-Glasspane: 1 "
                                 "header")
    current = found.tokens.get(secret)
    if current is None:
        with found.database.session() as session:
            user = user_for_token(session, secret)
            if user is None:
                raise HTTPException(401, "invalid or expired token",
                                    headers={"WWW-Authenticate": "Bearer"})
            current = CurrentUser(user.name, user.role)
        found.tokens.put(secret, current)
    request.state.user = current.name
    return current


def require(role: str) -> Callable[..., CurrentUser]:
    """A dependency admitting users whose role includes `role`."""
    def check(user: CurrentUser = Depends(authenticated)) -> CurrentUser:
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
    def mark(request: Request) -> None:
        params = request.path_params
        request.state.audit = (action.format(**params), object_type,
                               object_name.format(**params), "")
    return Depends(mark)


def page(limit: int, offset: int, total: int, items: list[Any]) -> dict[str, Any]:
    return {"total": total, "limit": limit, "offset": offset, "items": items}
