"""The `--database` option the server's commands share, and where its password may come
from: the environment (GLASSPANE_DATABASE_URL) or a file (--database-password-file), never
the command line, where every user of the machine can read it (ps, /proc/PID/cmdline)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
from click.core import ParameterSource

from glasspane.errors import UsageError

F = TypeVar("F", bound=Callable[..., Any])
_PASSWORD_FILE = "glasspane.database_password_file"  # noqa: S105 - a ctx.meta key


def database_option(command: F) -> F:
    """`--database URL` (or GLASSPANE_DATABASE_URL) and `--database-password-file F`; the
    command gets the URL, with the password from the file put in, as `database_url`."""
    command = click.option(
        "--database", "database_url", envvar="GLASSPANE_DATABASE_URL", callback=_url,
        help="sqlite:///PATH or postgresql+psycopg://USER@HOST/DB (default: SQLite in the "
             "data directory); a URL with a password only in GLASSPANE_DATABASE_URL.")(command)
    return click.option(
        "--database-password-file", type=click.Path(exists=True, dir_okay=False,
                                                    path_type=Path),
        expose_value=False, is_eager=True,  # read before --database's check
        callback=lambda ctx, _param, value: ctx.meta.__setitem__(_PASSWORD_FILE, value),
        help="Read the database's password from this file.")(command)


def _url(ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError
    password_file: Path | None = ctx.meta.get(_PASSWORD_FILE)
    if value is None:
        if password_file is not None:
            raise UsageError("--database-password-file needs a PostgreSQL URL",
                             hint="--database postgresql+psycopg://USER@HOST/DB")
        return None
    try:
        url = make_url(value)
    except ArgumentError:
        return value  # the database layer names what is wrong with it
    if url.password and ctx.get_parameter_source("database_url") is \
            ParameterSource.COMMANDLINE:
        raise UsageError("a password in --database can be read by every user of this "
                         "machine", hint="put the URL in GLASSPANE_DATABASE_URL, or the "
                                         "password in a file for --database-password-file")
    if password_file is None:
        return value
    password = password_file.read_text().rstrip("\n")
    if not password:
        raise UsageError(f"{password_file} is empty", hint="write the database's password "
                                                          "in it")
    rendered: str = url.set(password=password).render_as_string(hide_password=False)
    return rendered


def database_password_file() -> Path | None:
    """The --database-password-file of the command being run, if it was given one."""
    ctx = click.get_current_context(silent=True)
    found: Path | None = ctx.meta.get(_PASSWORD_FILE) if ctx is not None else None
    return found
