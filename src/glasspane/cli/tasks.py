"""`glasspane task ...`, `login`, `logout`: things that exist only on a glasspane server."""

from __future__ import annotations

import json

import click

from glasspane.cli.remote import Remote, remote_of, save_token, token_file
from glasspane.cli.table import echo_table
from glasspane.errors import UsageError
from glasspane.settings import Settings


def _remote(ctx: click.Context) -> Remote:
    remote = remote_of(ctx)
    if remote is None:
        raise UsageError("tasks live on a glasspane server", hint="add --server URL")
    return remote


@click.group()
def task() -> None:
    """The server's tasks: long actions with progress (needs --server)."""


@task.command("list")
@click.option("--state", type=click.Choice(["queued", "running", "succeeded", "failed",
                                            "cancelled"]))
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_tasks(ctx: click.Context, state: str | None, as_json: bool) -> None:
    """Recent tasks, newest first."""
    items = _remote(ctx).get("/tasks", state=state)["items"]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    echo_table(("ID", "KIND", "OBJECT", "STATE", "PROGRESS", "BY", "MESSAGE"),
               [(t["id"], t["kind"], t["object_name"], t["state"], f"{t['progress']}%",
                 t["created_by"], t["error"] or t["message"]) for t in items])


@task.command()
@click.argument("task_id", type=int)
@click.pass_context
def show(ctx: click.Context, task_id: int) -> None:
    """Everything about task TASK_ID (JSON)."""
    click.echo(json.dumps(_remote(ctx).get(f"/tasks/{task_id}"), indent=2))


@task.command()
@click.argument("task_id", type=int)
@click.pass_context
def wait(ctx: click.Context, task_id: int) -> None:
    """Follow task TASK_ID to its end (exit 5 if it did not succeed)."""
    remote = _remote(ctx)
    done = remote.wait(remote.get(f"/tasks/{task_id}"))
    click.echo(f"task {task_id}: {done['state']}")


@task.command()
@click.argument("task_id", type=int)
@click.pass_context
def cancel(ctx: click.Context, task_id: int) -> None:
    """Ask task TASK_ID to stop (where its action allows)."""
    result = _remote(ctx).post(f"/tasks/{task_id}/cancel")
    click.echo(f"task {task_id}: {result['state']}")


@click.command()
@click.argument("name")
@click.option("--password-file", type=click.Path(exists=True, dir_okay=False))
@click.pass_context
def login(ctx: click.Context, name: str, password_file: str | None) -> None:
    """Log in to the --server as NAME; the session token is kept in CONFIG_DIR/token (0600)."""
    server = (ctx.find_root().obj or {}).get("server")
    if not server:
        raise UsageError("log in to which server?", hint="glasspane --server URL login NAME")
    if password_file:
        with open(password_file) as f:
            password = f.read().rstrip("\n")
    else:
        password = click.prompt("password", hide_input=True)
    answer = Remote(server, None).post("/auth/login", {"name": name, "password": password})
    path = save_token(Settings.load(), answer["token"])
    click.echo(f"logged in to {server} as {name} ({answer['role']}); token in {path}")


@click.command()
@click.pass_context
def logout(ctx: click.Context) -> None:
    """End the session with the --server and forget its token."""
    import os
    _remote(ctx).post("/auth/logout")
    path = token_file(Settings.load())
    if os.path.exists(path):
        os.unlink(path)
    click.echo("logged out")
