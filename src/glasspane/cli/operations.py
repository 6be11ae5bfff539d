"""What the CLI asks for, as one interface with two implementations: `LocalOperations` (the
services, on this machine) and `RemoteOperations` (a glasspane server's API, with --server).
Every command calls `operations(ctx)` and prints what comes back; none knows which it has.
Commands that only make sense on this machine say so with `@local_only`, those that only
make sense against a server with `@server_only`."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click
from pydantic import ValidationError

from glasspane.api.results import SpecCheck
from glasspane.cli.console_attach import Link
from glasspane.containers.service import Listing, VmFailure
from glasspane.enums import PowerState
from glasspane.errors import UsageError
from glasspane.inventory.store import StoredImage
from glasspane.operations.catalogue import CATALOGUE, Operation
from glasspane.operations.vms import ExecResult
from glasspane.templates.service import TemplateInfo
from glasspane.templates.spec import TemplateSpec


@dataclass
class VmRow:
    name: str
    uuid: str
    power_state: PowerState
    template: str | None
    labels: dict[str, str]
    addresses: list[str]

    def __post_init__(self) -> None:
        self.power_state = PowerState(self.power_state)


@dataclass
class VmInfo:
    """What `vm info` shows; the server adds what its inventory knows (None: not known)."""
    name: str
    host: str
    power_state: PowerState
    addresses: list[str]
    snapshots: list[str]
    disk: str | None
    template: str | None = None
    labels: list[str] | None = None
    containers: list[str] | None = None
    console_log: str = ""

    def __post_init__(self) -> None:
        self.power_state = PowerState(self.power_state)


@dataclass
class Configured:
    vms: list[str]
    recap: str | None  # None: the playbook's output was already shown as it ran
    note: str


@dataclass
class Exported:
    format: str
    size: int
    sha256: str | None = None


@dataclass
class Built:
    name: str
    seconds: float
    place: str  # where the outputs are
    outputs: list[str]
    registered: str | None  # the host that keeps the template


@dataclass
class AppRow:
    host: str
    vm: str
    name: str
    containers: list[str]


@dataclass
class AppListing:
    apps: list[AppRow]
    failures: list[VmFailure] = field(default_factory=list)


class Operations(Protocol):
    place: str  # "" here, " on URL" through a server: for messages

    def run(self, name: str, quiet: bool = True, /, **fields: Any) -> Any:
        """Catalogue operation `name` (glasspane.operations) with its command's `fields`:
        its typed result.  Here: its handler; through a server: its route (a task followed
        to its end).  An operation of the catalogue needs no method of its own below."""
        ...

    def vm_list(self, host: str) -> list[VmRow]: ...
    def vm_info(self, name: str, host: str) -> VmInfo: ...
    def vm_console(self, name: str, host: str, lines: int) -> str: ...
    def vm_console_link(self, name: str, host: str) -> Link:
        """VM `name`'s serial console to type into: the driver's stream here, the API's
        WebSocket (with a one-time ticket) through a server."""
        ...
    def vm_ssh(self, name: str, host: str, command: list[str], user: str,
               identity: str | None) -> ExecResult:
        """ssh itself on this terminal here; through a server, operation vm.exec."""
        ...
    def vm_configure(self, vms: list[str], label: str | None, playbook: Path,
                     extra_vars: dict[str, str], quiet: bool) -> Configured: ...
    def vm_export(self, name: str, host: str, file: str, to: str | None, disk: int,
                  force: bool, quiet: bool) -> Exported: ...

    def container_list(self, vm: str | None, host: str | None, all_: bool,
                       timeout: float) -> Listing: ...
    def container_logs(self, host: str, vm: str, name: str, follow: bool,
                       tail: int | None) -> Iterator[tuple[str, bytes]]: ...
    def container_images(self, host: str, vm: str) -> list[dict[str, Any]]: ...

    def template_list(self, host: str) -> list[TemplateInfo]: ...
    def template_validate(self, spec: TemplateSpec, variables: dict[str, str]
                          ) -> SpecCheck: ...
    def template_build(self, spec: TemplateSpec, variables: dict[str, str],
                       only: list[str], output_dir: Path | None, host: str,
                       register: bool, quiet: bool) -> Built: ...

    def image_info(self, file: str, fmt: str | None, quiet: bool) -> dict[str, Any]: ...
    def image_list(self) -> list[StoredImage]: ...
    def image_put(self, file: Path, name: str, replace: bool, quiet: bool) -> StoredImage: ...
    def image_get(self, name: str, dest: Path, force: bool, quiet: bool) -> str: ...

    def app_deploy(self, host: str, vm: str, spec: Path) -> list[tuple[str, str]]: ...
    def app_validate(self, spec: Path) -> list[str]: ...
    def app_list(self, vm: str | None, host: str | None) -> AppListing: ...

    def task_wait(self, task_id: int) -> str: ...


def server_of(ctx: click.Context) -> str | None:
    server: str | None = (ctx.find_root().obj or {}).get("server")
    return server


def operations(ctx: click.Context | None = None) -> Operations:
    """The implementation this invocation uses: the server's API with --server (or
    GLASSPANE_SERVER), this machine's services otherwise."""
    ctx = ctx or click.get_current_context()
    server = server_of(ctx)
    if server:
        from glasspane.cli.remote_operations import RemoteOperations
        return RemoteOperations.connect(server)
    from glasspane.cli.local import LocalOperations
    return LocalOperations(ctx.params.get("database_url"))


F = TypeVar("F", bound=Callable[..., Any])


def _guard(refuse: Callable[[click.Context], UsageError | None]) -> Callable[[F], F]:
    def decorate(command: F) -> F:
        @functools.wraps(command)
        def run(*args: Any, **kwargs: Any) -> Any:
            error = refuse(click.get_current_context())
            if error is not None:
                raise error
            return command(*args, **kwargs)
        return run  # type: ignore[return-value]
    return decorate


def local_only(when: Callable[[dict[str, Any]], bool] = lambda params: True,
               message: str | None = None, hint: str | None = None) -> Callable[[F], F]:
    """The command (or, `when` its parameters say so, this use of it) has no API call: with
    --server it refuses rather than act on this machine."""
    def refuse(ctx: click.Context) -> UsageError | None:
        if not server_of(ctx) or not when(ctx.params):
            return None
        path = " ".join(filter(None, (ctx.command_path, ctx.invoked_subcommand)))
        return UsageError(message or f"`{path}` does not work through --server yet",
                          hint=hint or "run it on the server's machine, or without --server")
    return _guard(refuse)


def server_only(message: str, hint: str) -> Callable[[F], F]:
    """The command acts on something only a glasspane server has (its tasks, a session)."""
    return _guard(lambda ctx: None if server_of(ctx) else UsageError(message, hint=hint))


host_option = click.option("--host", default="local", show_default=True)
json_option = click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")


def operation_named(name: str) -> Operation[Any, Any]:
    from glasspane.operations import (  # noqa: F401  (they fill the catalogue)
        apps,
        containers,
        hardware,
        hosts,
        images,
        task_ops,
        templates,
        users,
    )
    from glasspane.operations import vms as _vm_operations  # noqa: F401  (fills the catalogue)
    return CATALOGUE[name]


def command_for(name: str, fields: dict[str, Any]) -> tuple[Operation[Any, Any], Any]:
    """Catalogue operation `name` and its command from `fields` (one given as a function, a
    prompt, is asked for now: once the operation is known to run here); a value its model
    refuses is a usage error naming the field, before anything is done."""
    op = operation_named(name)
    try:
        given = {k: v() if callable(v) else v for k, v in fields.items()}
        return op, op.parse({**given, **{field: handle for handle, (field, _)
                                         in handles(op, given).items()}})
    except ValidationError as exc:
        problems = "; ".join(_problem(op.object_type, e) for e in exc.errors(include_url=False))
        raise UsageError(f"{name}: {problems}") from exc


def _problem(kind: str, error: Any) -> str:
    field = ".".join(str(p) for p in error["loc"])
    if error["type"] == "string_pattern_mismatch":  # the user's own value, in their words
        return f"invalid {kind} {field} {error['input']!r}"
    return f"{field}: {error['msg']}"


def handles(op: Operation[Any, Any], fields: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """For each file field given a value: its handle, and the field and the value."""
    return {f"local-{field}": (field, str(fields[field]))
            for field in (*op.files, *filter(None, [op.output]))
            if fields.get(field) is not None}
