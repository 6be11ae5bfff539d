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
from glasspane.containers.engine import EngineInfo
from glasspane.containers.service import ContainerStats, Listing, VmFailure
from glasspane.enums import PowerState, Role, TaskState
from glasspane.errors import UsageError
from glasspane.hypervisors.base import HostInfo
from glasspane.images.base import WriteOptions
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
class HostRow:
    name: str
    driver: str
    uri: str  # never with a password
    state: str | None = None  # the server's view of it: ok, unreachable, ...


@dataclass
class Built:
    name: str
    seconds: float
    place: str  # where the outputs are
    outputs: list[str]
    registered: str | None  # the host that keeps the template


@dataclass
class Written:
    path: str
    format: str
    virtual_size: int | None
    file_size: int
    allocated: int | None = None
    sha256: str | None = None


@dataclass
class Converted:
    outputs: list[Written]
    seconds: float | None
    verified: list[str]


@dataclass
class Checked:
    path: str
    format: str | None
    ok: bool
    problems: list[Any]


@dataclass
class Compared:
    identical: bool
    results: list[Any]  # each disk's comparison, in words (or the toolkit's record)
    lines: list[str] = field(default_factory=list)


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


@dataclass
class UserRow:
    name: str
    role: Role
    disabled: bool


@dataclass
class PasswordChanged:
    user: str
    revoked: int
    note: str


@dataclass
class ConvertJob:
    """`image convert`'s options, as both ends take them."""
    to: str | None
    src_format: str | None
    disk: int | None
    options: WriteOptions
    force: bool
    verify: bool
    sync: bool


Prompt = Callable[[], str]


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
    def container_engine(self, host: str, vm: str) -> EngineInfo: ...
    def container_inspect(self, host: str, vm: str, name: str) -> dict[str, Any]: ...
    def container_logs(self, host: str, vm: str, name: str, follow: bool,
                       tail: int | None) -> Iterator[tuple[str, bytes]]: ...
    def container_top(self, host: str, vm: str, name: str
                      ) -> tuple[list[str], list[list[str]]]: ...
    def container_stats(self, host: str, vm: str, name: str) -> ContainerStats: ...
    def container_images(self, host: str, vm: str) -> list[dict[str, Any]]: ...

    def host_add(self, name: str, uri: str, driver: str, check: bool, user: str,
                 password: str | None, verify_tls: bool, ca_file: str | None) -> HostRow: ...
    def host_list(self) -> list[HostRow]: ...
    def host_info(self, name: str) -> HostInfo: ...
    def host_remove(self, name: str) -> None: ...

    def template_import(self, name: str, host: str, file: str, disk: int | None,
                        kernel: str | None, initrd: str | None, quiet: bool
                        ) -> TemplateInfo: ...
    def template_from_debian(self, name: str, host: str, suite: str,
                             quiet: bool) -> TemplateInfo: ...
    def template_list(self, host: str) -> list[TemplateInfo]: ...
    def template_remove(self, name: str, host: str) -> None: ...
    def template_validate(self, spec: TemplateSpec, variables: dict[str, str]
                          ) -> SpecCheck: ...
    def template_build(self, spec: TemplateSpec, variables: dict[str, str],
                       only: list[str], output_dir: Path | None, host: str,
                       register: bool, quiet: bool) -> Built: ...

    def image_info(self, file: str, fmt: str | None, quiet: bool) -> dict[str, Any]: ...
    def image_convert(self, src: str, dst: str, job: ConvertJob, quiet: bool
                      ) -> Converted: ...
    def image_check(self, file: str, fmt: str | None, quiet: bool) -> Checked: ...
    def image_compare(self, a: str, b: str, disk: int | None, quiet: bool) -> Compared: ...
    def image_load(self, host: str, vm: str, file: str) -> list[str]: ...
    def image_upload(self, file: str, host: str, name: str, sr: str | None,
                     quiet: bool) -> str: ...
    def image_list(self) -> list[StoredImage]: ...
    def image_put(self, file: Path, name: str, replace: bool, quiet: bool) -> StoredImage: ...
    def image_get(self, name: str, dest: Path, force: bool, quiet: bool) -> str: ...
    def image_delete(self, name: str) -> None: ...

    def app_deploy(self, host: str, vm: str, spec: Path) -> list[tuple[str, str]]: ...
    def app_validate(self, spec: Path) -> list[str]: ...
    def app_list(self, vm: str | None, host: str | None) -> AppListing: ...

    def user_add(self, name: str, role: Role, password: Prompt) -> None: ...
    def user_list(self) -> list[UserRow]: ...
    def user_token(self, name: str, label: str, days: int | None) -> str: ...
    def user_remove(self, name: str) -> None: ...
    def user_passwd(self, name: str | None, new: Prompt, current: Prompt
                    ) -> PasswordChanged: ...

    def task_list(self, state: TaskState | None) -> list[dict[str, Any]]: ...
    def task_show(self, task_id: int) -> dict[str, Any]: ...
    def task_wait(self, task_id: int) -> str: ...
    def task_cancel(self, task_id: int) -> str: ...
    def logout(self) -> None: ...


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


def command_for(name: str, fields: dict[str, Any]) -> tuple[Operation[Any, Any], Any]:
    """Catalogue operation `name` and its command from `fields`; a value its model refuses
    is a usage error naming the field, before anything is done."""
    from glasspane.operations import apps, containers, hardware  # noqa: F401
    from glasspane.operations import vms as _vm_operations  # noqa: F401  (fills the catalogue)
    op = CATALOGUE[name]
    try:
        return op, op.parse(fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors(include_url=False))
        raise UsageError(f"{name}: {problems}") from exc

