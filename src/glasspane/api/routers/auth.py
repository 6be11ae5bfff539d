"""Login (rate-limited, its password hashing bounded), logout, who am I, and changing one's
own password."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from glasspane.api.deps import (
    COOKIE,
    CurrentUser,
    Services,
    audit_as,
    audited,
    authenticated,
    services,
    token_of,
)
from glasspane.api.limits import LoginGate, LoginLimiter
from glasspane.api.results import Me, PasswordSet, Status
from glasspane.api.results import Session as SessionView
from glasspane.api.schemas import AUTHENTICATED, errors
from glasspane.inventory.models import User
from glasspane.inventory.users import (
    SESSION_HOURS,
    authenticate,
    issue_token,
    revoke_token,
    set_password,
)

router = APIRouter(prefix="/auth", tags=["auth"])
T = TypeVar("T")


class Login(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current: str = Field(min_length=1, max_length=1024)
    new: str = Field(min_length=8, max_length=1024)


def _guards(request: Request) -> tuple[LoginLimiter, LoginGate]:
    state = request.app.state  # one of each per application
    return state.login_limiter, state.login_gate


def _address(request: Request) -> str:
    return request.client.host if request.client else "?"


async def _with_password(request: Request, found: Services, name: str, password: str,
                         then: Callable[[Session, User], T], refusal: HTTPException) -> T:
    """Check `name`'s `password` as a login attempt (rate-limited per address and name, the
    hash run behind the gate), then do `then` with the user in the same session; `refusal`
    when the password is wrong."""
    limiter, gate = _guards(request)

    def check() -> tuple[T] | None:
        with found.database.session() as session:
            user = authenticate(session, name, password)
            return None if user is None else (then(session, user),)

    # The attempt is reserved before the hash: concurrent guesses count at once.
    with limiter.attempt((_address(request), name)) as attempt:
        done = await gate.run(check)
        if done is None:
            attempt.failed()
            raise refusal
        attempt.succeeded()
    return done[0]


@router.post("/login", response_model=SessionView,
             responses=errors(400, 401, 408, 413, 422, 429, 503))
async def login(body: Login, request: Request, response: Response,
                found: Services = Depends(services)) -> dict[str, object]:
    """Exchange a name and password for a session token (also set as an HttpOnly cookie).
    429 after 5 failures a minute from one address for one name; 503 (Retry-After) while
    too many logins are being checked at once."""
    audit_as(request, "login", "user", body.name)
    request.state.user = body.name
    lifetime = dt.timedelta(hours=SESSION_HOURS)
    token, role = await _with_password(
        request, found, body.name, body.password,
        lambda session, user: (issue_token(session, user, "session", lifetime), user.role),
        HTTPException(401, "wrong user name or password"))
    request.state.authenticated = True
    response.set_cookie(COOKIE, token, max_age=int(lifetime.total_seconds()), httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")
    return {"token": token, "user": body.name, "role": role,
            "expires_in": int(lifetime.total_seconds())}


@router.post("/logout", response_model=Status, responses=errors(400, 401, 403),
             dependencies=[audited("logout", "user")])
def logout(request: Request, response: Response, user: CurrentUser = Depends(authenticated),
           found: Services = Depends(services)) -> dict[str, str]:
    audit_as(request, "logout", "user", user.name)
    secret = token_of(request)[0] or ""
    with found.database.session() as session:
        revoke_token(session, secret)
    found.tokens.forget(secret)
    response.delete_cookie(COOKIE)
    return {"status": "logged out"}


@router.get("/me", response_model=Me, responses=errors(400, 401))
def me(user: CurrentUser = Depends(authenticated)) -> dict[str, str]:
    return {"name": user.name, "role": user.role}


@router.post("/password", response_model=PasswordSet,
             responses={**AUTHENTICATED, **errors(408, 413, 429, 503)},
             dependencies=[audited("password.change", "user")])
async def change_password(body: PasswordChange, request: Request,
                          user: CurrentUser = Depends(authenticated),
                          found: Services = Depends(services)) -> dict[str, object]:
    """Change your own password (the current one is checked, and counted as a login
    attempt); every other token and session of yours is revoked, this one stays."""
    audit_as(request, "password.change", "user", user.name)
    secret = token_of(request)[0]
    revoked = await _with_password(
        request, found, user.name, body.current,
        lambda session, checked: set_password(session, checked, body.new, found.settings,
                                               keep=secret),
        HTTPException(403, "the current password is not right"))
    found.tokens.clear()  # the revoked tokens may be remembered
    return {"user": user.name, "status": "password changed", "revoked_tokens": revoked}
