"""The operations on this machine: the services called directly, long work with progress
bars on stderr.  The user's own files are read wherever they point (FOLLOW_ANYWHERE): a
backing file is theirs too, unlike on a server."""

from __future__ import annotations

import datetime as dt
import getpass
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, cast

import click

from glasspane.api.results import SpecCheck
from glasspane.cli import operations as ops
from glasspane.cli.progress import byte_progress, percent_progress
from glasspane.cli.table import human
from glasspane.containers import app as apps
from glasspane.containers import deploy
from glasspane.containers import service as containers
from glasspane.enums import PowerState, Role
from glasspane.errors import OutputError, UsageError
from glasspane.hosts import service as hosts
from glasspane.hosts.registry import HostRegistry
from glasspane.hypervisors.capabilities import Capability, require
from glasspane.hypervisors.uris import redacted
from glasspane.images.references import FOLLOW_ANYWHERE
from glasspane.inventory.store import Actor, ImageStore, StoredImage
from glasspane.operations.catalogue import Caller, Context
from glasspane.operations.vms import ExecResult
from glasspane.process import interactive
from glasspane.settings import Settings
from glasspane.templates import service as templates
from glasspane.vms import service as vms

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from glasspane.hypervisors.base import HostInfo
    from glasspane.templates.spec import TemplateSpec

LOCAL = Actor("local", admin=True)  # this machine's store belongs to whoever runs the CLI


def _server_only(*_: Any) -> NoReturn:
    raise UsageError("tasks live on a glasspane server", hint="add --server URL")


class LocalOperations:
    place = ""

    def __init__(self, database_url: str | None = None) -> None:
        self.settings = Settings.load()
        self.database_url = database_url

    def run(self, name: str, quiet: bool = True, /, **fields: Any) -> Any:
        # The machine's own user acts here with every right, as with the services directly;
        # the drivers check the states (the inventory may not know this host yet).
        op, command = ops.command_for(name, fields)
        caller = Caller(getpass.getuser(), Role.ADMIN)
        with percent_progress(not quiet, f"{op.verb} {fields.get('name', '')}".strip()) as report:
            return op.handler(Context(self.settings, caller, progress=report), command)

    def vm_list(self, host: str) -> list[ops.VmRow]:
        return [ops.VmRow(**cast(dict[str, Any], v)) for v in vms.list_vms(self.settings, host)]

    def vm_info(self, name: str, host: str) -> ops.VmInfo:
        found = vms.vm_info(self.settings, name, host)
        return ops.VmInfo(found.name, found.host, PowerState(found.power_state),
                          found.addresses, found.snapshots, found.disk,
                          console_log=found.console_log)

    def vm_console(self, name: str, host: str, lines: int) -> str:
        return vms.console_log(self.settings, name, host, lines)

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

    def host_add(self, name: str, uri: str, driver: str, check: bool, user: str,
                 password: str | None, verify_tls: bool, ca_file: str | None) -> ops.HostRow:
        record = hosts.add_host(self.settings, name, uri, driver, check=check, user=user,
                                password=password, verify_tls=verify_tls, ca_file=ca_file)
        return ops.HostRow(record.name, record.driver, redacted(record.uri, query=True))

    def host_list(self) -> list[ops.HostRow]:
        # A password in a URI (a XenServer URL's user:password@) is shown to no one.
        return [ops.HostRow(r.name, r.driver, redacted(r.uri, query=True))
                for r in HostRegistry(self.settings).all()]

    def host_info(self, name: str) -> HostInfo:
        return hosts.host_info(self.settings, name)

    def host_remove(self, name: str) -> None:
        HostRegistry(self.settings).remove(name)

    def template_import(self, name: str, host: str, file: str, disk: int | None,
                        kernel: str | None, initrd: str | None,
                        quiet: bool) -> templates.TemplateInfo:
        with byte_progress(not quiet) as start:
            return templates.import_template(self.settings, name, file, host, disk, start,
                                             kernel=kernel, initrd=initrd,
                                             references=FOLLOW_ANYWHERE)

    def template_from_debian(self, name: str, host: str, suite: str,
                             quiet: bool) -> templates.TemplateInfo:
        if not quiet:
            click.echo(f"building or reusing the Debian {suite} image (about two minutes the "
                       "first time) ...", err=True)
        with byte_progress(not quiet) as start:
            return templates.template_from_debian(self.settings, name, host, suite, start)

    def template_list(self, host: str) -> list[templates.TemplateInfo]:
        return templates.list_templates(self.settings, host)

    def template_remove(self, name: str, host: str) -> None:
        templates.remove_template(self.settings, name, host)

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

    def image_convert(self, src: str, dst: str, job: ops.ConvertJob,
                      quiet: bool) -> ops.Converted:
        from glasspane.images.convert import convert
        began = time.monotonic()
        with byte_progress(not quiet) as start:
            outputs = convert(src, dst, to=job.to, src_format=job.src_format, disk=job.disk,
                              options=job.options, overwrite=job.force, sync=job.sync,
                              start=start, references=FOLLOW_ANYWHERE)
        elapsed = time.monotonic() - began
        verified = _verify(src, outputs, job.disk, job.src_format) if job.verify else []
        return ops.Converted([ops.Written(o.path, o.format, o.virtual_size, o.file_size,
                                          o.allocated) for o in outputs],
                             round(elapsed, 3), verified)

    def image_check(self, file: str, fmt: str | None, quiet: bool) -> ops.Checked:
        from glasspane.images.check import check_image
        report = check_image(file, fmt, FOLLOW_ANYWHERE)
        return ops.Checked(report.path, report.format, report.ok, report.problems)

    def image_compare(self, a: str, b: str, disk: int | None, quiet: bool) -> ops.Compared:
        from glasspane.images.compare import compare_images
        results = compare_images(a, b, disk, FOLLOW_ANYWHERE)
        return ops.Compared(all(r.identical for r in results), results,
                            [r.describe() for r in results])

    def image_load(self, host: str, vm: str, file: str) -> list[str]:
        path = Path(file)
        with byte_progress(True) as start:
            return deploy.load_image(self.settings, host, vm, path,
                                     start(path.stat().st_size, f"loading into {vm}"))

    def image_upload(self, file: str, host: str, name: str, sr: str | None,
                     quiet: bool) -> str:
        with hosts.host_driver(self.settings, host) as connected:
            driver = require(connected, Capability.IMAGE_TRANSFER, "uploading a disk",
                             hint="use `glasspane template import` instead")
            with byte_progress(not quiet) as start:
                return driver.upload_disk(file, name, start(os.path.getsize(file),
                                                            f"{name} to {host}"), sr,
                                          FOLLOW_ANYWHERE)

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

    def image_delete(self, name: str) -> None:
        self._store().delete(name, LOCAL)

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

    @contextmanager
    def _session(self) -> Iterator[Session]:
        from glasspane.inventory.db import Database
        with Database.open(self.settings, self.database_url).session() as session:
            yield session

    def user_add(self, name: str, role: Role, password: ops.Prompt) -> None:
        from glasspane.inventory.users import add_user
        with self._session() as session:
            add_user(session, name, password(), role)

    def user_list(self) -> list[ops.UserRow]:
        from sqlalchemy import select

        from glasspane.inventory.models import User
        with self._session() as session:
            return [ops.UserRow(u.name, Role(u.role), u.disabled)
                    for u in session.scalars(select(User).order_by(User.name))]

    def user_token(self, name: str, label: str, days: int | None) -> str:
        from glasspane.inventory.users import get_user, issue_token
        with self._session() as session:
            return issue_token(session, get_user(session, name), label,
                               dt.timedelta(days=days) if days else None)

    def user_remove(self, name: str) -> None:
        from glasspane.inventory.users import get_user
        with self._session() as session:
            session.delete(get_user(session, name))

    def user_passwd(self, name: str | None, new: ops.Prompt,
                    current: ops.Prompt) -> ops.PasswordChanged:
        from glasspane.inventory.users import get_user, set_password
        if name is None:
            raise UsageError("name the user whose password to change",
                             hint="`glasspane user passwd NAME`, or through --server for your "
                                  "own")
        with self._session() as session:
            revoked = set_password(session, get_user(session, name), new(), self.settings)
        return ops.PasswordChanged(name, revoked, "tokens revoked; a running server forgets "
                                                  "them within seconds")

    task_list = task_show = task_wait = task_cancel = logout = _server_only


def _verify(src: str, outputs: list[Any], disk: int | None, src_format: str | None
            ) -> list[str]:
    """Each output compared with the source; the comparisons, or an error listing them."""
    from glasspane.images.compare import compare_images
    results = [(o.path, r) for index, o in enumerate(outputs)
               for r in compare_images(src, o.path, index if disk is None and len(outputs) > 1
                                       else disk, FOLLOW_ANYWHERE, src_format)
               [:None if len(outputs) == 1 else 1]]
    lines = [f"verified {path}: {r.describe()}" for path, r in results]
    if not all(r.identical for _, r in results):
        for line in lines:
            click.echo(line, err=True)
        raise click.ClickException("verification failed: the output differs from the source")
    return lines

