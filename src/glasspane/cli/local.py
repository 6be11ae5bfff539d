"""The operations on this machine: the services called directly, long work with progress
bars on stderr.  The user's own files are read wherever they point (FOLLOW_ANYWHERE): a
backing file is theirs too, unlike on a server."""

from __future__ import annotations

import getpass
import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

from glasspane.api.results import SpecCheck
from glasspane.cli import operations as ops
from glasspane.cli.console_attach import ChannelLink, Link
from glasspane.cli.progress import byte_progress, percent_progress
from glasspane.cli.table import human
from glasspane.containers import app as apps
from glasspane.containers import service as containers
from glasspane.enums import ConsoleKind, PowerState, Role
from glasspane.errors import OutputError, UsageError
from glasspane.images.references import FOLLOW_ANYWHERE
from glasspane.inventory.store import Actor, ImageStore, StoredImage
from glasspane.operations.catalogue import Caller, Context
from glasspane.operations.files import LocalFiles
from glasspane.operations.vms import ExecResult
from glasspane.process import interactive
from glasspane.settings import Settings
from glasspane.templates import service as templates
from glasspane.vms import service as vms

if TYPE_CHECKING:

    from glasspane.templates.spec import TemplateSpec

LOCAL = Actor("local", admin=True)  # this machine's store belongs to whoever runs the CLI


def _server_only(*_: Any) -> NoReturn:
    raise UsageError("tasks live on a glasspane server", hint="add --server URL")


class LocalOperations:
    place = ""

    def __init__(self, database_url: str | None = None) -> None:
        # --database: the inventory this invocation's operations read and change.
        self.settings = replace(Settings.load(), database_url=database_url or "")

    def run(self, name: str, quiet: bool = True, /, **fields: Any) -> Any:
        # The machine's own user acts here with every right, as with the services directly;
        # the drivers check the states (the inventory may not know this host yet).  Its file
        # fields name the user's own files.
        op = ops.operation_named(name)
        handler = op.handler
        if handler is None:  # refused before any prompt of its fields is asked
            raise UsageError(f"{name} is done by a glasspane server",
                             hint=op.hint or "add --server URL")
        op, command = ops.command_for(name, fields)
        files = LocalFiles({handle: value for handle, (_, value)
                            in ops.handles(op, fields).items()})
        caller = Caller(getpass.getuser(), Role.ADMIN)
        label = f"{op.verb} {fields.get('name', '')}".strip()
        with byte_progress(not quiet and op.bytes) as start, \
                percent_progress(not quiet and not op.bytes, label) as report:
            done = handler(Context(self.settings, caller, progress=report, files=files,
                                   start=start), command)
            report(100, "")  # a quick one (a check) reports little on the way: not left at 5%
            return done

    def vm_list(self, host: str) -> list[ops.VmRow]:
        return [ops.VmRow(**cast(dict[str, Any], v)) for v in vms.list_vms(self.settings, host)]

    def vm_info(self, name: str, host: str) -> ops.VmInfo:
        found = vms.vm_info(self.settings, name, host)
        return ops.VmInfo(found.name, found.host, PowerState(found.power_state),
                          found.addresses, found.snapshots, found.disk,
                          console_log=found.console_log)

    def vm_console(self, name: str, host: str, lines: int) -> str:
        return vms.console_log(self.settings, name, host, lines)

    def vm_console_link(self, name: str, host: str) -> Link:
        from glasspane.vms.consoles import open_console
        return ChannelLink(open_console(self.settings, name, host, ConsoleKind.SERIAL))

    def vm_ssh(self, name: str, host: str, command: list[str], user: str,
               identity: str | None) -> ExecResult:
        """ssh itself, on this terminal: its output is already shown."""
        args = vms.ssh_command(self.settings, name, host, user, identity, tuple(command))
        return ExecResult(exit_code=interactive(args, f"SSH into VM {name}"), output="",
                          truncated=False)

    def vm_configure(self, names: list[str], label: str | None, playbook: Path,
                     extra_vars: dict[str, str], quiet: bool) -> ops.Configured:
        from glasspane.vms.configure import configure_vms

        def echo(chunk: bytes) -> None:
            click.echo(chunk.decode(errors="replace"), nl=False)
        result = configure_vms(self.settings, playbook, names, label, extra_vars,
                               on_output=None if quiet else echo)
        return ops.Configured(result["vms"], result["recap"] if quiet else None,
                              f": {result['tasks']} task(s) ran")

    def vm_export(self, name: str, host: str, file: str, to: str | None, disk: int,
                  force: bool, quiet: bool) -> ops.Exported:
        from glasspane.vms.export import export_vm
        with byte_progress(not quiet) as start:
            fmt = export_vm(self.settings, name, Path(file), host, to, disk, force, start)
        return ops.Exported(fmt, Path(file).stat().st_size)

    def container_list(self, vm: str | None, host: str | None, all_: bool,
                       timeout: float) -> containers.Listing:
        return containers.list_containers(self.settings, vm, host, all_, timeout)

    def container_logs(self, host: str, vm: str, name: str, follow: bool,
                       tail: int | None) -> Iterator[tuple[str, bytes]]:
        return containers.logs(self.settings, host, vm, name, follow, tail)

    def container_images(self, host: str, vm: str) -> list[dict[str, Any]]:
        return containers.list_images(self.settings, host, vm)


    def template_list(self, host: str) -> list[templates.TemplateInfo]:
        return templates.list_templates(self.settings, host)

    def template_validate(self, spec: TemplateSpec, variables: dict[str, str]
                          ) -> SpecCheck:
        return SpecCheck(name=spec.name, source=spec.source.describe(),
                         provisioners=len(spec.provisioners),
                         outputs=[o.filename(spec.name) for o in spec.outputs])

    def template_build(self, spec: TemplateSpec, variables: dict[str, str], only: list[str],
                       output_dir: Path | None, host: str, register: bool,
                       quiet: bool) -> ops.Built:
        from glasspane.templates.build import build_template

        def echo(text: str) -> None:
            click.echo(text, nl=False)
        with byte_progress(not quiet) as start:
            done = build_template(self.settings, spec, only=tuple(only), output_dir=output_dir,
                                  host=host, register=register, start=start,
                                  echo=None if quiet else echo, references=FOLLOW_ANYWHERE)
        return ops.Built(done.name, done.manifest["build_seconds"],
                         f"outputs in {done.directory}",
                         [f"{o['file']}  {human(o['file_size'])}  sha256 {o['sha256'][:16]}..."
                          f"  verified: {', '.join(o['verified'])}"
                          for o in done.manifest["outputs"]],
                         done.template.host if done.template is not None else None)

    def image_info(self, file: str, fmt: str | None, quiet: bool) -> dict[str, Any]:
        from glasspane.images.inspect import image_info
        return image_info(file, fmt, FOLLOW_ANYWHERE)

    def _store(self) -> ImageStore:
        return ImageStore(self.settings.data_dir, self.settings.store_reserve)

    def image_list(self) -> list[StoredImage]:
        return self._store().list()

    def image_put(self, file: Path, name: str, replace: bool, quiet: bool) -> StoredImage:
        store = self._store()
        store.check_new(name, replace, LOCAL)
        with store.staging() as work:
            shutil.copyfile(file, work / name)
            return store.adopt(work / name, name, LOCAL, replace)

    def image_get(self, name: str, dest: Path, force: bool, quiet: bool) -> str:
        store = self._store()
        expected = store.get(name).sha256
        if dest.exists() and not force:
            raise OutputError(f"{dest} already exists", hint="use --force to replace it")
        partial = dest.with_name(f".{dest.name}.part-{os.getpid()}")
        try:
            shutil.copyfile(store.path(name), partial)
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)
        return expected

    def app_deploy(self, host: str, vm: str, spec: Path) -> list[tuple[str, str]]:
        return apps.deploy_app(self.settings, host, vm, spec)

    def app_validate(self, spec: Path) -> list[str]:
        return [s.name for s in apps.parse_app(spec).services]

    def app_list(self, vm: str | None, host: str | None) -> ops.AppListing:
        listing = containers.list_containers(self.settings, vm, host, all_=True)
        grouped: dict[tuple[str, str, str], list[str]] = {}
        for row in listing.containers:
            if row.app:
                grouped.setdefault((row.host, row.vm, row.app), []).append(
                    f"{row.name} {row.state}")
        return ops.AppListing([ops.AppRow(*key, names) for key, names in sorted(grouped.items())],
                              listing.failures)

    task_wait = _server_only

