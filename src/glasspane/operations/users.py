"""The operations on users of the API and the page (admins only), each written once: listing
and adding them, issuing a token, removing one, setting a password; and, by routes of their
own (they act on the request's session: its token kept, its Argon2 hashing bounded with the
logins'), changing one's own password and logging out.  On a server they act on its
database; on this machine, on the inventory --database names."""

from __future__ import annotations

import datetime as dt
from typing import Any

from pydantic import Field, RootModel
from sqlalchemy import select

from glasspane.api.results import IssuedToken, PasswordSet, Status, UserView
from glasspane.enums import Role
from glasspane.errors import UsageError
from glasspane.operations.catalogue import Command, Context, operation, register
from glasspane.operations.catalogue import Operation as Op

USER = {"role": Role.ADMIN, "object_type": "user", "target_name": "{name}"}
UserName = Field(min_length=1, max_length=64)
Password = Field(min_length=8, max_length=1024, repr=False,
                 json_schema_extra={"format": "password", "writeOnly": True})


def view(user: Any) -> UserView:
    return UserView(name=user.name, role=user.role, disabled=user.disabled,
                    created_at=user.created_at.isoformat())


def forget_tokens(found: Any) -> None:
    found.tokens.clear()  # the server's cache of who each token is: its user's went


class NoFields(Command):
    pass


class Users(RootModel[list[UserView]]):
    pass


@operation("user.list", "GET", "/users", NoFields, Users, role=Role.ADMIN, object_type="user")
def list_users(context: Context, command: NoFields) -> Users:
    """The users and their roles."""
    from glasspane.inventory.models import User
    with context.inventory().session() as session:
        return Users([view(u) for u in session.scalars(select(User).order_by(User.name))])


class AddUser(Command):
    name: str = UserName
    password: str = Password
    role: str = Field(pattern="^(" + "|".join(Role) + ")$")


@operation("user.add", "POST", "/users", AddUser, UserView, status=201,
           audit_detail=lambda c: f"role {c.role}", **USER)
def add(context: Context, command: AddUser) -> UserView:
    """Create a user (the first one is usually an admin)."""
    from glasspane.inventory.users import add_user
    with context.inventory().session() as session:
        return view(add_user(session, command.name, command.password, command.role))


class NewToken(Command):
    name: str = UserName
    label: str = Field(min_length=1, max_length=64, alias="name",
                       description="what the token is for")
    days: int | None = Field(default=None, ge=1, le=3650)


@operation("user.token", "POST", "/users/{name}/tokens", NewToken, IssuedToken, status=201,
           audit="token.add", audit_detail=lambda c: c.label, errors=(404,), **USER)
def token(context: Context, command: NewToken) -> IssuedToken:
    """A new API token for user NAME; the secret is in this answer and nowhere else."""
    from glasspane.inventory.users import get_user, issue_token
    with context.inventory().session() as session:
        secret = issue_token(session, get_user(session, command.name), command.label,
                             dt.timedelta(days=command.days) if command.days else None)
    return IssuedToken(user=command.name, name=command.label, token=secret)


class NamedUser(Command):
    name: str = UserName


@operation("user.remove", "DELETE", "/users/{name}", NamedUser, Status, errors=(404,),
           notify=forget_tokens, **USER)
def remove(context: Context, command: NamedUser) -> Status:
    """Remove a user and its tokens."""
    from glasspane.inventory.users import get_user
    if command.name == context.caller.name:
        raise UsageError("you cannot remove yourself", hint="another admin can")
    with context.inventory().session() as session:
        session.delete(get_user(session, command.name))
    return Status(status="removed")


class SetPassword(NamedUser):
    password: str = Password


@operation("user.passwd", "POST", "/users/{name}/password", SetPassword, PasswordSet,
           audit="password.set", routed=False, **USER)
def passwd(context: Context, command: SetPassword) -> PasswordSet:
    """Set user NAME's password; all of NAME's tokens and sessions are revoked."""
    from glasspane.inventory.users import get_user, set_password
    with context.inventory().session() as session:
        revoked = set_password(session, get_user(session, command.name), command.password,
                               context.settings)
    return PasswordSet(user=command.name, status="password set", revoked_tokens=revoked)


class ChangePassword(Command):
    current: str = Field(min_length=1, max_length=1024, repr=False)
    new: str = Password


register(Op("password.change", "POST", "/auth/password", ChangePassword, PasswordSet, None,
            role=Role.VIEWER, routed=False, object_type="user",
            hint="name the user whose password to change: `glasspane user passwd NAME`, or "
                 "add --server URL for your own"))
register(Op("logout", "POST", "/auth/logout", NoFields, Status, None, role=Role.VIEWER,
            routed=False, object_type="user"))
