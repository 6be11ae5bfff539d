"""`glasspane task ...`, `login`, `logout`: things that exist only on a glasspane server."""

from __future__ import annotations

import click

from glasspane.cli.operations import json_option, operations, server_of, server_only
from glasspane.cli.remote import Remote, save_token, token_file
from glasspane.cli.table import echo_table, emit_json
from glasspane.enums import TaskState
from glasspane.settings import Settings

on_server = server_only("tasks live on a glasspane server", "add --server URL")


@click.group()
def task() -> None:
    """The server's tasks: long actions with progress (needs --server)."""


@task.command("list")
@click.option("--state", type=click.Choice([s.value for s in TaskState]))
@json_option
@on_server
def list_tasks(state: str | None, as_json: bool) -> None:
    """Recent tasks, newest first."""
    items = operations().run("task.list", state=state).items
    if as_json:
        emit_json(items)
        return
    echo_table(("ID", "KIND", "OBJECT", "STATE", "PROGRESS", "BY", "MESSAGE"),
               [(t.id, t.kind, t.object_name, t.state, f"{t.progress}%", t.created_by,
                 t.error or t.message) for t in items])


@task.command()
@click.argument("task_id", type=int)
@on_server
def show(task_id: int) -> None:
    """Everything about task TASK_ID (JSON)."""
    emit_json(operations().run("task.show", task_id=task_id))


@task.command()
@click.argument("task_id", type=int)
@on_server
def wait(task_id: int) -> None:
    """Follow task TASK_ID to its end (exit 5 if it did not succeed)."""
    click.echo(f"task {task_id}: {operations().task_wait(task_id)}")


@task.command()
@click.argument("task_id", type=int)
@on_server
def cancel(task_id: int) -> None:
    """Ask task TASK_ID to stop (where its action allows)."""
    click.echo(f"task {task_id}: {operations().run('task.cancel', task_id=task_id).state}")


@click.command()
@click.argument("name")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False))
@server_only("log in to which server?", "glasspane --server URL login NAME")
def login(name: str, password_file: str | None) -> None:
    """Log in to the --server as NAME; the session token is kept in CONFIG_DIR/token (0600)."""
    server = server_of(click.get_current_context()) or ""
    if password_file:
        with open(password_file) as f:
            password = f.read().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True)
    answer = Remote(server, None).call("POST", "/auth/login",
                                       json={"name": name, "password": password})
    path = save_token(Settings.load(), answer["token"])
    click.echo(f"logged in to {server} as {name} ({answer['role']}); token in {path}")


@click.command()
@on_server
def logout() -> None:
    """End the session with the --server and forget its token."""
    import os
    operations().run("logout")
    path = token_file(Settings.load())
    if os.path.exists(path):
        os.unlink(path)
    click.echo("logged out")
