"""Login (rate-limited, its password hashing bounded), logout, who am I, and changing one's
own password."""

from __future__ import annotations

import datetime as dt

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
    token_of,
)
from glasspane.api.limits import LoginGate, LoginLimiter
from glasspane.api.results import Me, PasswordSet, Session, Status
from glasspane.api.schemas import AUTHENTICATED, errors
from glasspane.inventory.users import (
    SESSION_HOURS,
    authenticate,
    issue_token,
    revoke_token,
    set_password,
)

router = APIRouter(prefix="/auth", tags=["auth"])


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


@router.post("/login", response_model=Session,
             responses=errors(400, 401, 408, 413, 422, 429, 503))
async def login(body: Login, request: Request, response: Response,
                found: Services = Depends(services)) -> dict[str, object]:
    """Exchange a name and password for a session token (also set as an HttpOnly cookie).
    429 after 5 failures a minute from one address for one name; 503 (Retry-After) while
    too many logins are being checked at once."""
    audit_as(request, "login", "user", body.name)
    request.state.user = body.name
    limiter, gate = _guards(request)
    lifetime = dt.timedelta(hours=SESSION_HOURS)

    def check() -> tuple[str, str] | None:
        with found.database.session() as session:
            user = authenticate(session, body.name, body.password)
            if user is None:
                return None
            return issue_token(session, user, "session", lifetime), user.role

    # The attempt is reserved before the hash: concurrent guesses count at once.
    with limiter.attempt((_address(request), body.name)) as attempt:
        issued = await gate.run(check)
        if issued is None:
            attempt.failed()
            raise HTTPException(401, "wrong user name or password")
        attempt.succeeded()
    request.state.authenticated = True
    token, role = issued
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
    limiter, gate = _guards(request)
    secret = token_of(request)[0]

    def change() -> int | None:
        with found.database.session() as session:
            checked = authenticate(session, user.name, body.current)
            if checked is None:
                return None
            return set_password(session, checked, body.new, found.settings, keep=secret)

    with limiter.attempt((_address(request), user.name)) as attempt:
        revoked = await gate.run(change)
        if revoked is None:
            attempt.failed()
            raise HTTPException(403, "the current password is not right")
        attempt.succeeded()
    found.tokens.clear()  # the revoked tokens may be remembered
    return {"user": user.name, "status": "password changed", "revoked_tokens": revoked}
