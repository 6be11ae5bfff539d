"""The CLI talking to a glasspane server instead of acting locally (`--server URL`): the same
commands, their API calls, the same output.  The token comes from GLASSPANE_TOKEN or the file
`glasspane login` writes (CONFIG_DIR/token, mode 0600); long actions are followed to their
end with a progress bar, as local ones are."""

from __future__ import annotations

import os
import stat
import time
from typing import Any

import click
import httpx

from glasspane.errors import (
    GlasspaneError,
    HostError,
    HostUnreachable,
    NotFound,
    UsageError,
)
from glasspane.settings import Settings

# The commands that work through --server: (noun, verb).
REMOTE_COMMANDS = {
    ("vm", v) for v in ("list", "info", "create", "start", "shutdown", "reboot", "pause",
                        "resume", "suspend", "snapshot", "destroy", "console", "configure")
} | {("container", v) for v in ("list", "start", "stop", "restart", "pause", "unpause",
                                "remove", "logs", "inspect", "top", "stats", "images", "run")} | {
    ("vm", "revert")} | {
    ("template", "list"), ("host", "list"), ("task", "list"), ("task", "show"),
    ("task", "cancel"), ("task", "wait"), ("login", None), ("logout", None)}


def token_file(settings: Settings) -> str:
    return str(settings.config_dir / "token")


def _stored_token(settings: Settings) -> str | None:
    path = token_file(settings)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    if stat.S_IMODE(info.st_mode) & 0o077:
        raise UsageError(f"{path} is readable by others", hint=f"chmod 600 {path}")
    with open(path) as f:
        return f.read().strip() or None


def save_token(settings: Settings, token: str) -> str:
    settings.config_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = token_file(settings)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return path


class Remote:
    def __init__(self, server: str, token: str | None) -> None:
        self.server = server.rstrip("/")
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.client = httpx.Client(base_url=self.server + "/api/v1", headers=headers,
                                   timeout=60)

    @classmethod
    def connect(cls, server: str) -> Remote:
        settings = Settings.load()
        token = os.environ.get("GLASSPANE_TOKEN") or _stored_token(settings)
        if not token:
            raise UsageError(f"no token for {server}",
                             hint="`glasspane --server URL login USER`, or set GLASSPANE_TOKEN")
        return cls(server, token)

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise HostUnreachable(f"cannot reach glasspane at {self.server}: {exc}") from None
        if response.status_code < 400:
            if response.headers.get("content-type", "").startswith("application/json"):
                return response.json()
            return response.text
        try:
            detail = response.json().get("detail")
        except ValueError:
            detail = response.text[:300]
        if not isinstance(detail, str):  # validation errors: a list of problems
            detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                               for d in detail or [] if isinstance(d, dict))
        raise _error(response.status_code, f"{self.server}: {detail}")

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.call("POST", path, json=body)

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def wait(self, task: dict[str, Any], quiet: bool = False) -> dict[str, Any]:
        """Follow a task to its end; raise if it did not succeed."""
        from glasspane.cli.progress import stderr_console
        label = f"{task['kind']} {task['object_name']}"
        show = not quiet and stderr_console().is_terminal
        progress_bar = None
        if show:
            from rich.progress import BarColumn, Progress, TextColumn
            progress_bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                    TextColumn("{task.percentage:>3.0f}% {task.fields[msg]}"),
                                    console=stderr_console())
            progress_bar.start()
            bar = progress_bar.add_task(label, total=100, msg="")
        try:
            while task["state"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(0.5)
                task = self.get(f"/tasks/{task['id']}")
                if progress_bar is not None:
                    progress_bar.update(bar, completed=task["progress"], msg=task["message"])
        finally:
            if progress_bar is not None:
                progress_bar.stop()
        if task["state"] != "succeeded":
            raise HostError(f"task {task['id']} ({label}) {task['state']}: {task['error']}")
        return task


def _error(status: int, message: str) -> GlasspaneError:
    if status == 404:
        return NotFound(message)
    if status in (400, 401, 403, 409, 413, 422, 429):
        return UsageError(message)
    return HostError(message)


def remote_of(ctx: click.Context) -> Remote | None:
    """The server this invocation talks to, if --server was given."""
    server = (ctx.find_root().obj or {}).get("server")
    return Remote.connect(server) if server else None
