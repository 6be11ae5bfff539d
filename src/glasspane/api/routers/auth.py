"""Login (rate-limited), logout and who am I."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import defaultdict, deque

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from glasspane.api.deps import (
    COOKIE,
    CurrentUser,
    Services,
    audit_as,
    audited,
    authenticated,
    services,
)
from glasspane.inventory.users import SESSION_HOURS, authenticate, issue_token, revoke_token

router = APIRouter(prefix="/auth", tags=["auth"])
MAX_FAILURES = 5
WINDOW = 60.0


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class LoginLimiter:
    """At most MAX_FAILURES failed logins per client address and user name per WINDOW s."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], deque[float]] = defaultdict(deque)

    def retry_after(self, key: tuple[str, str]) -> int:
        with self._lock:
            recent = self._failures[key]
            now = time.monotonic()
            while recent and now - recent[0] > WINDOW:
                recent.popleft()
            return int(WINDOW - (now - recent[0])) + 1 if len(recent) >= MAX_FAILURES else 0

    def failed(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures[key].append(time.monotonic())

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)



@router.post("/login")
def login(body: Login, request: Request, response: Response,
          found: Services = Depends(services)) -> dict[str, object]:
    """Exchange a name and password for a session token (also set as an HttpOnly cookie)."""
    key = (request.client.host if request.client else "?", body.name)
    audit_as(request, "login", "user", body.name)
    request.state.user = body.name
    limiter: LoginLimiter = request.app.state.login_limiter  # one per application
    wait = limiter.retry_after(key)
    if wait:
        raise HTTPException(429, f"too many failed logins; try again in {wait} s",
                            headers={"Retry-After": str(wait)})
    with found.database.session() as session:
        user = authenticate(session, body.name, body.password)
        if user is None:
            limiter.failed(key)
            raise HTTPException(401, "wrong user name or password")
        limiter.succeeded(key)
        lifetime = dt.timedelta(hours=SESSION_HOURS)
        token = issue_token(session, user, "session", lifetime)
        role = user.role
    response.set_cookie(COOKIE, token, max_age=int(lifetime.total_seconds()), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return {"token": token, "user": body.name, "role": role,
            "expires_in": int(lifetime.total_seconds())}


@router.post("/logout", dependencies=[audited("logout", "user")])
def logout(request: Request, response: Response, user: CurrentUser = Depends(authenticated),
           found: Services = Depends(services)) -> dict[str, str]:
    audit_as(request, "logout", "user", user.name)
    header = request.headers.get("authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else \
        request.cookies.get(COOKIE, "")
    with found.database.session() as session:
        revoke_token(session, secret)
    found.tokens.forget(secret)
    response.delete_cookie(COOKIE)
    return {"status": "logged out"}


@router.get("/me")
def me(user: CurrentUser = Depends(authenticated)) -> dict[str, str]:
    return {"name": user.name, "role": user.role}
