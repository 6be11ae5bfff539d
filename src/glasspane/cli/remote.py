"""The HTTP side of --server: the token (GLASSPANE_TOKEN or the file `glasspane login` writes,
CONFIG_DIR/token, mode 0600), calls and their errors, files sent to and fetched from the
server's image store, and tasks followed to their end with a progress bar."""

from __future__ import annotations

import os
import re
import secrets
import stat
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from glasspane.errors import (
    GlasspaneError,
    HostError,
    HostUnreachable,
    NotFound,
    UsageError,
)
from glasspane.settings import Settings, private_dir, private_file

if TYPE_CHECKING:
    from websockets.sync.client import ClientConnection

CHUNK = 1 << 20


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
    private_dir(settings.config_dir)
    path = token_file(settings)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    private_file(fd)
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
        raise _error(response.status_code, f"{self.server}: {_detail(response)}")

    def websocket(self, path: str) -> ClientConnection:
        """A WebSocket to `path` (under the server, query included) with this token."""
        from websockets.exceptions import InvalidHandshake, InvalidStatus
        from websockets.sync.client import connect
        url = "ws" + self.server.removeprefix("http") + path
        try:
            token = self.client.headers.get("authorization")
            return connect(url, additional_headers={"Authorization": token} if token else {},
                           open_timeout=60, max_size=None)
        except InvalidStatus as exc:
            response = exc.response
            detail = _detail(httpx.Response(response.status_code,
                                            content=bytes(response.body or b"")))
            raise _error(response.status_code, f"{self.server}: {detail}") from None
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            raise HostUnreachable(f"cannot reach glasspane at {self.server}: {exc}") from None

    def get(self, path: str, **params: Any) -> Any:
        return self.call("GET", path, params={k: v for k, v in params.items() if v is not None})

    def delete(self, path: str) -> Any:
        return self.call("DELETE", path)

    def put_file(self, path: Path, name: str, replace: bool = False,
                 quiet: bool = False) -> dict[str, Any]:
        """Send `path` into the server's image store as `name`, streamed, with a progress
        bar; the stored image's record."""
        from glasspane.cli.progress import byte_progress
        size = path.stat().st_size

        with byte_progress(not quiet) as start:
            advance = start(size, f"{path.name} to {self.server}")

            def chunks() -> Iterator[bytes]:
                with open(path, "rb") as f:
                    while block := f.read(CHUNK):
                        advance(len(block))
                        yield block
            stored: dict[str, Any] = self.call(
                "PUT", f"/images/{quote(name, safe='')}", content=chunks(),
                params={"replace": "true"} if replace else None, timeout=None,
                headers={"Content-Length": str(size),
                         "Content-Type": "application/octet-stream"})
        return stored

    def get_file(self, name: str, dest: Path, force: bool = False,
                 quiet: bool = False) -> int:
        """Download stored image `name` to `dest` (a temporary name until complete, then
        renamed; refused if `dest` exists unless `force`); the bytes written."""
        from glasspane.cli.progress import byte_progress
        from glasspane.images.output import AtomicOutputs
        url = f"/images/{quote(name, safe='')}/content"
        try:
            with self.client.stream("GET", url, timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    raise _error(response.status_code,
                                 f"{self.server}: {_detail(response)}")
                total = int(response.headers.get("content-length", 0))
                written = 0
                with byte_progress(not quiet) as start, AtomicOutputs(force, True) as outs:
                    advance = start(total, f"{name} from {self.server}")
                    sink = outs.create(str(dest))
                    for block in response.iter_bytes(CHUNK):
                        sink.append(block)
                        written += len(block)
                        advance(len(block))
                    if total and written != total:
                        raise HostError(f"{self.server}: the download of {name} stopped at "
                                        f"{written} of {total} bytes")
        except httpx.HTTPError as exc:
            raise HostUnreachable(f"cannot reach glasspane at {self.server}: {exc}") from None
        return written

    @contextmanager
    def staged(self, path: Path, quiet: bool = False) -> Iterator[str]:
        """`path` uploaded under a one-off name for one command, deleted afterwards."""
        name = f"cli-{secrets.token_hex(4)}-{_safe_name(path.name)}"
        self.put_file(path, name, quiet=quiet)
        try:
            yield name
        finally:
            # If the server went away, its store keeps the file until someone deletes it.
            with suppress(GlasspaneError):
                self.delete(f"/images/{name}")

    @contextmanager
    def sent_context(self, spec: Path, referenced: list[Path], label: str,
                     quiet: bool = False) -> Iterator[str]:
        """The directory of `spec` packed and sent to the server's store for one command."""
        import tempfile

        from glasspane.build_context import pack_context
        with tempfile.TemporaryDirectory(prefix="glasspane-context-") as work:
            archive = Path(work) / label
            pack_context(spec, referenced, archive)
            with self.staged(archive, quiet) as name:
                yield name

    @contextmanager
    def stored_input(self, argument: str, quiet: bool = False) -> Iterator[str]:
        """A FILE argument given with --server as a stored image's name: `@NAME` is already
        in the server's store; anything else is a local file sent for this command."""
        if argument.startswith("@"):
            self.get(f"/images/{quote(argument[1:], safe='')}")  # NotFound now, not later
            yield argument[1:]
            return
        path = Path(argument)
        if not path.is_file():
            raise UsageError(f"no such file: {argument}",
                             hint="with --server, `@NAME` names an image in the server's "
                                  "store (`glasspane --server URL image list`)")
        with self.staged(path, quiet) as name:
            yield name

    def fetch_output(self, argument: str,
                     make: Callable[[str], tuple[Any, list[str]]], force: bool = False,
                     quiet: bool = False, shown: dict[str, str] | None = None) -> Any:
        """Run `make(stored_name)` (a server-side task writing stored images; it returns its
        result and the names it stored) for an output argument: `@NAME` stays in the
        server's store; a local path is made under a one-off name, downloaded there (and
        any further outputs beside it, by their own names) and deleted from the store.
        `shown` gets each stored name as the user knows it: `@NAME`, or its local file."""
        shown = {} if shown is None else shown
        if argument.startswith("@"):
            shown[argument[1:]] = argument
            return make(argument[1:])[0]
        dest = Path(argument)
        if dest.exists() and not force:
            raise UsageError(f"{dest} already exists", hint="use --force to replace it")
        prefix = f"cli-{secrets.token_hex(4)}-"
        name = prefix + _safe_name(dest.name)
        stored: list[str] = []
        try:
            result, stored = make(name)
            for each in stored:
                target = dest if each == name else dest.with_name(each.removeprefix(prefix))
                shown[each] = str(target)
                self.get_file(each, target, force, quiet)
        finally:
            for each in stored or [name]:
                with suppress(GlasspaneError):
                    self.delete(f"/images/{quote(each, safe='')}")
        return result

    def wait(self, task: dict[str, Any], quiet: bool = False) -> dict[str, Any]:
        """Follow a task to its end; raise if it did not succeed."""
        from glasspane.cli.progress import percent_progress
        label = f"{task['kind']} {task['object_name']}"
        with percent_progress(not quiet, label) as update:
            while task["state"] not in ("succeeded", "failed", "cancelled"):
                time.sleep(0.5)
                task = self.get(f"/tasks/{task['id']}")
                update(task["progress"], task["message"])
        if task["state"] != "succeeded":
            raise HostError(f"task {task['id']} ({label}) {task['state']}: {task['error']}")
        return task


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except ValueError:
        return response.text[:300]
    if not isinstance(detail, str):  # validation errors: a list of problems
        detail = "; ".join(f"{'.'.join(str(p) for p in d.get('loc', []))}: {d.get('msg')}"
                           for d in detail or [] if isinstance(d, dict))
    return str(detail)


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9._+-]", "_", name).lstrip(".") or "file"
    return cleaned[-100:]


def _error(status: int, message: str) -> GlasspaneError:
    if status == 404:
        return NotFound(message)
    if status in (400, 401, 403, 409, 413, 422, 429):
        return UsageError(message)
    return HostError(message)

