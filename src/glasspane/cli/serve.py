"""`glasspane serve` (the pane: API, events and page) and `glasspane user ...`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from glasspane.cli.remote import remote_of
from glasspane.settings import Settings, private_dir, private_file

if TYPE_CHECKING:
    from glasspane.inventory.db import Database

database_option = click.option(
    "--database", "database_url", envvar="GLASSPANE_DATABASE_URL",
    help="sqlite:///PATH or postgresql+psycopg://USER:PASSWORD@HOST/DB "
         "(default: SQLite in the data directory).")


@click.command()
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="ADDRESS:PORT.")
@database_option
@click.option("--sync-interval", type=click.FloatRange(1, 3600), default=10,
              show_default=True, help="Seconds between inventory passes.")
@click.option("--bootstrap-admin", is_flag=True,
              help="With no users yet, create `admin` with a random password written to "
                   "CONFIG_DIR/admin-password (mode 0600).")
def serve(listen: str, database_url: str | None, sync_interval: float,
          bootstrap_admin: bool) -> None:
    """Serve the REST API, live events and the page, keeping the inventory in sync."""
    import socket

    import uvicorn

    from glasspane.api.app import create_app
    from glasspane.inventory.db import Database
    address, _, port = listen.rpartition(":")
    if not address or not port.isdigit():
        raise click.BadParameter(f"{listen!r} is not ADDRESS:PORT", param_hint="--listen")
    settings = Settings.load()
    database = Database.open(settings, database_url)
    if bootstrap_admin:
        _bootstrap_admin(settings, database)
    app = create_app(settings, database, instance=f"{socket.gethostname()}:{port}",
                     sync_interval=sync_interval)
    click.echo(f"glasspane serving http://{address}:{port}/ "
               f"({'PostgreSQL' if database.is_postgres else 'SQLite'})", err=True)
    uvicorn.run(app, host=address, port=int(port), log_level="warning")


def _bootstrap_admin(settings: Settings, database: Database) -> None:
    import os
    import secrets

    from sqlalchemy import func, select

    from glasspane.inventory.models import User
    from glasspane.inventory.users import add_user
    with database.session() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return
        password = secrets.token_urlsafe(12)
        path = private_dir(settings.config_dir) / "admin-password"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        private_file(fd)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        add_user(session, "admin", password, "admin")
    click.echo(f"created user admin; its password is in {path} (readable by you only)",
               err=True)


@click.group()
def user() -> None:
    """Users of the API and the page, and their tokens."""


def _password(password_file: str | None) -> str:
    if password_file:
        return Path(password_file).read_text().rstrip("\n")
    value: str = click.prompt("password", hide_input=True, confirmation_prompt=True)
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
