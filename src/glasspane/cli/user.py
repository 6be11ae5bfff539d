"""`glasspane user ...`: the users of the API and the page, their tokens and passwords, on
the server's database (locally) or through its API (--server)."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from glasspane.cli.database import database_option
from glasspane.cli.operations import operations
from glasspane.enums import Role


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
@click.option("--role", type=click.Choice([r.value for r in reversed(Role)]), required=True)
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False),
              help="Read the password from this file (default: ask).")
@database_option
def add(name: str, role: str, password_file: str | None, database_url: str | None) -> None:
    """Create user NAME (the first one is usually an admin)."""
    ops = operations()
    ops.run("user.add", name=name, role=role, password=_password(password_file))
    click.echo(f"added {role} {name}{ops.place}")


@user.command("list")
@database_option
def list_users(database_url: str | None) -> None:
    """The users and their roles."""
    for found in operations().run("user.list").root:
        click.echo(f"{found.name}  {found.role}{'  (disabled)' if found.disabled else ''}")


@user.command("token")
@click.argument("name")
@click.option("--label", default="cli", show_default=True, help="What the token is for.")
@click.option("--days", type=click.IntRange(1, 3650), help="Expires after this many days.")
@database_option
def token(name: str, label: str, days: int | None, database_url: str | None) -> None:
    """Make an API token for user NAME and print it (once: it is stored hashed)."""
    click.echo(operations().run("user.token", name=name, label=label, days=days).token)


@user.command("remove")
@click.argument("name")
@database_option
def remove_user(name: str, database_url: str | None) -> None:
    """Remove user NAME and its tokens."""
    operations().run("user.remove", name=name)
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
    def current() -> str:
        if current_password_file:
            return Path(current_password_file).read_text().rstrip("\n")
        value: str = click.prompt("current password", hide_input=True)
        return value
    # Asked for once the operation is known to run here (functions: see `command_for`).
    new = functools.partial(_password, password_file, "new password")
    ops = operations()
    if name is None:  # one's own: the current password is checked
        done = ops.run("password.change", current=current, new=new)
    else:
        done = ops.run("user.passwd", name=name, password=new)
    click.echo(f"changed the password of {done.user}{ops.place} ({done.revoked_tokens} "
               "tokens revoked)")
