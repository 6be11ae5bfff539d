"""`glasspane serve`: the pane (API, events and page), over HTTP or HTTPS, with the
server's limits; `--bootstrap-admin` makes the first admin."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

import click

from glasspane.cli.database import database_option, database_password_file
from glasspane.cli.operations import local_only
from glasspane.errors import UsageError
from glasspane.settings import Settings, private_dir, private_file

if TYPE_CHECKING:
    from glasspane.inventory.db import Database


@click.command()
@click.option("--listen", default="127.0.0.1:8080", show_default=True, help="ADDRESS:PORT.")
@database_option
@click.option("--sync-interval", type=click.FloatRange(1, 3600), default=10,
              show_default=True, help="Seconds between inventory passes.")
@click.option("--bootstrap-admin", is_flag=True,
              help="With no users yet, create `admin` with a random password written to "
                   "CONFIG_DIR/admin-password (mode 0600; removed when that password is "
                   "changed).")
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Serve HTTPS with this certificate (PEM; with --tls-key).")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The certificate's private key (PEM).")
@click.option("--trusted-proxy", "trusted_proxies", multiple=True, metavar="ADDRESS",
              help="A reverse proxy whose X-Forwarded-For/-Proto are believed (repeatable; "
                   "default: none, the client is who connects).")
@click.option("--max-connections", type=click.IntRange(1, 1_000_000), default=1000,
              show_default=True, help="Connections held at once; more are answered 503.")
@local_only()
def serve(listen: str, database_url: str | None, sync_interval: float,
          bootstrap_admin: bool, tls_cert: Path | None, tls_key: Path | None,
          trusted_proxies: tuple[str, ...], max_connections: int) -> None:
    """Serve the REST API, live events and the page, keeping the inventory in sync."""
    import socket

    import uvicorn

    from glasspane.api.app import create_app
    from glasspane.api.limits import ServerLimits
    from glasspane.api.transport import server_config
    from glasspane.inventory.db import Database
    address, _, port = listen.rpartition(":")
    if not address or not port.isdigit():
        raise click.BadParameter(f"{listen!r} is not ADDRESS:PORT", param_hint="--listen")
    if (tls_cert is None) != (tls_key is None):
        raise UsageError("--tls-cert and --tls-key go together",
                         hint="give both, or neither to serve plain HTTP")
    settings = Settings.load()
    database = Database.open(settings, database_url)
    settings = dataclasses.replace(settings, secret_files=_secret_files(database, tls_key))
    if bootstrap_admin:
        _bootstrap_admin(settings, database)
    limits = ServerLimits(max_connections=max_connections, trusted_proxies=trusted_proxies)
    app = create_app(settings, database, instance=f"{socket.gethostname()}:{port}",
                     sync_interval=sync_interval, limits=limits)
    config = server_config(app, address, int(port), tls_cert=tls_cert, tls_key=tls_key)
    try:
        config.load()  # a certificate that does not load fails here, in one line
    except (OSError, ValueError) as exc:
        raise UsageError(f"cannot use --tls-cert/--tls-key: {exc}",
                         hint="a PEM certificate and its unencrypted private key") from None
    scheme = "https" if tls_cert else "http"
    click.echo(f"glasspane serving {scheme}://{address}:{port}/ "
               f"({'PostgreSQL' if database.is_postgres else 'SQLite'})", err=True)
    uvicorn.Server(config).run()


def _secret_files(database: Database, tls_key: Path | None) -> tuple[Path, ...]:
    """The files of the server's own that its options name (the sandbox hides them)."""
    found = [tls_key, database_password_file()]
    if not database.is_postgres and database.engine.url.database:
        found.append(Path(database.engine.url.database))
    return tuple(p for p in found if p is not None)


def _bootstrap_admin(settings: Settings, database: Database) -> None:
    import os
    import secrets

    from sqlalchemy import func, select

    from glasspane.inventory.models import User
    from glasspane.inventory.users import BOOTSTRAP_USER, add_user, bootstrap_password_file
    with database.session() as session:
        if session.scalar(select(func.count()).select_from(User)):
            return
        password = secrets.token_urlsafe(12)
        private_dir(settings.config_dir)
        path = bootstrap_password_file(settings)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        private_file(fd)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        add_user(session, BOOTSTRAP_USER, password, "admin")
    click.echo(f"created user {BOOTSTRAP_USER}; its password is in {path} (readable by you "
               "only; `glasspane user passwd` changes it and removes the file)", err=True)
