"""Users and their API tokens (admins only): listing, adding and removing users and issuing
tokens are operations of the catalogue (operations/users.py); setting a password is written
here, as it keeps the caller's own session and bounds its hashing with the logins'."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select

from glasspane.api.deps import CurrentUser, Services, admin, audited, services, token_of
from glasspane.api.limits import LoginGate
from glasspane.api.operations import add_routes
from glasspane.api.results import PasswordSet, TokenView
from glasspane.api.schemas import AUTHENTICATED, errors
from glasspane.inventory.models import ApiToken
from glasspane.inventory.users import get_user, set_password
from glasspane.operations.catalogue import CATALOGUE
from glasspane.operations.users import Password

router = APIRouter(tags=["users"], responses=AUTHENTICATED)


class NewPassword(BaseModel):
    model_config = ConfigDict(extra="forbid")
    password: str = Password


@router.post("/users/{name}/password", response_model=PasswordSet,
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


@router.get("/users/{name}/tokens", response_model=list[TokenView], responses=errors(404))
def list_tokens(name: str, _: CurrentUser = Depends(admin),
                found: Services = Depends(services)) -> list[dict[str, object]]:
    with found.database.session() as session:
        user = get_user(session, name)
        return [{"name": t.name, "prefix": t.prefix, "created_at": t.created_at.isoformat(),
                 "expires_at": t.expires_at.isoformat() if t.expires_at else None}
                for t in session.scalars(select(ApiToken).where(ApiToken.user_id == user.id))]


add_routes(router, [op for op in CATALOGUE.values() if op.name.startswith("user.")])
