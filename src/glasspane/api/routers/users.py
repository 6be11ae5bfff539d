"""Users and their API tokens (admins only)."""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from glasspane.api.deps import (
    CurrentUser,
    Services,
    admin,
    audit_as,
    audited,
    services,
    token_of,
)
from glasspane.api.limits import LoginGate
from glasspane.api.results import IssuedToken, PasswordSet, Status, TokenView, UserView
from glasspane.api.schemas import AUTHENTICATED, errors
from glasspane.errors import UsageError
from glasspane.inventory.models import ApiToken, User
from glasspane.inventory.users import ROLES, add_user, get_user, issue_token, set_password

router = APIRouter(prefix="/users", tags=["users"], responses=AUTHENTICATED)


class NewUser(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=8, max_length=1024)
    role: str = Field(pattern="^(" + "|".join(ROLES) + ")$")


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Field(min_length=8, max_length=1024)


class NewToken(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    days: int | None = Field(default=None, ge=1, le=3650)


def _view(user: User) -> dict[str, object]:
    return {"name": user.name, "role": user.role, "disabled": user.disabled,
            "created_at": user.created_at.isoformat()}


@router.get("", response_model=list[UserView])
def list_users(_: CurrentUser = Depends(admin), found: Services = Depends(services)
               ) -> list[dict[str, object]]:
    with found.database.session() as session:
        return [_view(u) for u in session.scalars(select(User).order_by(User.name))]


@router.post("", status_code=201, response_model=UserView, responses=errors(408, 413),
             dependencies=[audited("user.add", "user")])
def create_user(body: NewUser, request: Request, _: CurrentUser = Depends(admin),
                found: Services = Depends(services)) -> dict[str, object]:
    audit_as(request, "user.add", "user", body.name, f"role {body.role}")
    with found.database.session() as session:
        return _view(add_user(session, body.name, body.password, body.role))


@router.delete("/{name}", response_model=Status, responses=errors(404),
               dependencies=[audited("user.remove", "user", "{name}")])
def delete_user(name: str, request: Request, current: CurrentUser = Depends(admin),
                found: Services = Depends(services)) -> dict[str, str]:
    audit_as(request, "user.remove", "user", name)
    if name == current.name:
        raise UsageError("you cannot remove yourself", hint="another admin can")
    with found.database.session() as session:
        session.delete(get_user(session, name))
    found.tokens.clear()  # the user's tokens went with it
    return {"status": "removed"}


@router.post("/{name}/password", response_model=PasswordSet,
             responses=errors(404, 408, 413, 503),
             dependencies=[audited("password.set", "user", "{name}")])
async def set_user_password(name: str, body: NewPassword, request: Request,
                            current: CurrentUser = Depends(admin),
                            found: Services = Depends(services)) -> dict[str, object]:
    """Set user NAME's password; all of NAME's tokens and sessions are revoked (but the
    caller's own, when NAME is the caller)."""
    keep = token_of(request)[0] if name == current.name else None

    def change() -> int:
        with found.database.session() as session:
            return set_password(session, get_user(session, name), body.password,
                                found.settings, keep=keep)

    gate: LoginGate = request.app.state.login_gate  # Argon2: with the logins' bound
    revoked = await gate.run(change)
    found.tokens.clear()
    return {"user": name, "status": "password set", "revoked_tokens": revoked}


@router.post("/{name}/tokens", status_code=201, response_model=IssuedToken,
             responses=errors(404, 408, 413),
             dependencies=[audited("token.add", "user", "{name}")])
def create_token(name: str, body: NewToken, request: Request, _: CurrentUser = Depends(admin),
                 found: Services = Depends(services)) -> dict[str, object]:
    """A new API token for user NAME; the secret is in this answer and nowhere else."""
    audit_as(request, "token.add", "user", name, body.name)
    with found.database.session() as session:
        user = get_user(session, name)
        secret = issue_token(session, user, body.name,
                             dt.timedelta(days=body.days) if body.days else None)
    return {"user": name, "name": body.name, "token": secret}


@router.get("/{name}/tokens", response_model=list[TokenView], responses=errors(404))
def list_tokens(name: str, _: CurrentUser = Depends(admin),
                found: Services = Depends(services)) -> list[dict[str, object]]:
    with found.database.session() as session:
        user = get_user(session, name)
        return [{"name": t.name, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
                 "expires_at": t.expires_at.isoformat() if t.expires_at else None}
                for t in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))]
