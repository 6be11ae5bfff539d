"""`glasspane user ...`: the users of the API and the page, their tokens and passwords, on
the server's database (locally) or through its API (--server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from urllib.parse import quote

import click

from glasspane.cli.database import database_option
from glasspane.cli.remote import remote_of
from glasspane.errors import UsageError
from glasspane.settings import Settings


@click.group()
def user() -> None:
    """Users of the API and the page, and their tokens."""


def _password(password_file: str | None, prompt: str = "password") -> str:
    if password_file:
        return Path(password_file).read_text().rstrip("\n")
    value: str = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    return value


@user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["admin", "operator", "viewer"]), required=True)
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False),
              help="Read the password from this file (default: ask).")
@database_option
def add(name: str, role: str, password_file: str | None, database_url: str | None) -> None:
    """Create user NAME (the first one is usually an admin)."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        remote.post("/users", {"name": name, "role": role,
                               "password": _password(password_file)})
        click.echo(f"added {role} {name} on {remote.server}")
        return
    from glasspane.inventory.db import Database
    from glasspane.inventory.users import add_user
    database = Database.open(Settings.load(), database_url)
    with database.session() as session:
        add_user(session, name, _password(password_file), role)
    click.echo(f"added {role} {name}")


@user.command("list")
@database_option
def list_users(database_url: str | None) -> None:
    """The users and their roles."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        for item in remote.get("/users"):
            click.echo(f"{item['name']}  {item['role']}"
                       + ("  (disabled)" if item["disabled"] else ""))
        return
    from sqlalchemy import select

    from glasspane.inventory.db import Database
    from glasspane.inventory.models import User
    database = Database.open(Settings.load(), database_url)
    with database.session() as session:
        for found in session.scalars(select(User).order_by(User.name)):
            click.echo(f"{found.name}  {found.role}{'  (disabled)' if found.disabled else ''}")


@user.command("token")
@click.argument("name")
@click.option("--label", default="cli", show_default=True, help="What the token is for.")
@click.option("--days", type=click.IntRange(1, 3650), help="Expires after this many days.")
@database_option
def token(name: str, label: str, days: int | None, database_url: str | None) -> None:
    """Make an API token for user NAME and print it (once: it is stored hashed)."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        click.echo(remote.post(f"/users/{name}/tokens", {"name": label, "days": days})["token"])
        return
    from glasspane.inventory.db import Database
    from glasspane.inventory.users import get_user, issue_token
    database = Database.open(Settings.load(), database_url)
    with database.session() as session:
        secret = issue_token(session, get_user(session, name), label,
                             dt.timedelta(days=days) if days else None)
    click.echo(secret)


@user.command("remove")
@click.argument("name")
@database_option
def remove_user(name: str, database_url: str | None) -> None:
    """Remove user NAME and its tokens."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        remote.delete(f"/users/{name}")
    else:
        from glasspane.inventory.db import Database
        from glasspane.inventory.users import get_user
        database = Database.open(Settings.load(), database_url)
        with database.session() as session:
            session.delete(get_user(session, name))
    click.echo(f"removed user {name}")


@user.command("passwd")
@click.argument("name", required=False)
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False),
              help="Read the new password from this file (default: ask).")
@click.option("--current-password-file", type=click.Path(exists=True, dir_okay=False),
              help="Through --server, for your own password: read the current one from "
                   "this file (default: ask).")
@database_option
def passwd(name: str | None, password_file: str | None, current_password_file: str | None,
           database_url: str | None) -> None:
    """Change a password: your own through --server (the current one is checked), or user
    NAME's (an admin's call through --server; locally, on the server's machine, any
    user's).  Every other token and session of that user is revoked; changing the
    bootstrap admin's password removes the file its first one was written to."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        if name is None or name == remote.get("/auth/me")["name"]:
            current = Path(current_password_file).read_text().rstrip("\n") \
                if current_password_file else click.prompt("current password",
                                                            hide_input=True)
            new = _password(password_file, "new password")
            done = remote.post("/auth/password", {"current": current, "new": new})
        else:
            done = remote.post(f"/users/{quote(name, safe='')}/password",
                               {"password": _password(password_file, "new password")})
        click.echo(f"changed the password of {done['user']} on {remote.server} "
                   f"({done['revoked_tokens']} other tokens revoked)")
        return
    if name is None:
        raise UsageError("name the user whose password to change",
                         hint="`glasspane user passwd NAME`, or through --server for your own")
    from glasspane.inventory.db import Database
    from glasspane.inventory.users import get_user, set_password
    settings = Settings.load()
    database = Database.open(settings, database_url)
    with database.session() as session:
        revoked = set_password(session, get_user(session, name),
                               _password(password_file, "new password"), settings)
    click.echo(f"changed the password of {name} ({revoked} tokens revoked; a running "
               "server forgets them within seconds)")
