"""`glasspane template build`: one spec, one build VM, every target's format.

    source -> temporary template -> build VM (cloud-init, glasspane's key) -> provisioners
    over SSH -> generalize -> clean shutdown -> each output written and verified in a staging
    directory -> manifest.json -> the staging directory swapped in for the previous build ->
    the template registered in glasspane's store, ready for `vm create`.

The build VM and its temporary template are destroyed whatever happens.  Outputs appear whole
or not at all: a failed build leaves no output and the previous build directory and template
of the same name as they were.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glasspane.enums import VmDefaults
from glasspane.errors import BuildFailed, Conflict, GlasspaneError
from glasspane.guests.access import guest_target
from glasspane.guests.sandbox import playbook_sandbox
from glasspane.guests.ssh import SshConnection
from glasspane.hosts.service import host_driver
from glasspane.hypervisors.capabilities import Capability, require, supports
from glasspane.images.convert import StartFn, no_progress
from glasspane.images.references import FOLLOW_ANYWHERE, STANDALONE, References
from glasspane.settings import Settings
from glasspane.templates.exports import ExportedOutput, export_output, manifest
from glasspane.templates.provisioners import BuildLog, generalize, run_provisioner
from glasspane.templates.service import (
    TemplateInfo,
    import_template,
    remove_template,
    templates_on,
)
from glasspane.templates.spec import Output, TemplateSpec, select_outputs
from glasspane.vms.service import (
    Report,
    VmRequest,
    create_vm,
    destroy_vm,
    no_report,
    shutdown_vm,
    vm_info,
)

SHUTDOWN_TIMEOUT = 180


@dataclass(frozen=True)
class BuildResult:
    name: str
    directory: Path
    manifest: dict[str, Any]
    template: TemplateInfo | None


@dataclass(frozen=True)
class _SourceFiles:
    disk: Path
    kernel: Path | None
    initrd: Path | None


def default_output_dir(spec: TemplateSpec) -> Path:
    return Path.cwd() / f"output-{spec.name}"


def _users_of_template(settings: Settings, host: str, name: str) -> list[str]:
    with host_driver(settings, host) as driver:
        found = [t for t in templates_on(driver, settings, host) if t.name == name]
        if not found or not supports(driver, Capability.PROVISIONING):
            return []  # a host's own templates: what uses them is the host's to say
        return require(driver, Capability.PROVISIONING, "finding a template's users"
                       ).volume_users(found[0].path)


def _source_files(settings: Settings, spec: TemplateSpec, start: StartFn) -> _SourceFiles:
    source = spec.source
    if source.image is not None:
        return _SourceFiles(source.image, source.kernel, source.initrd)
    from glasspane.guests.debian_image import debian_image
    assert source.suite is not None
    image = debian_image(settings.cache_dir, source.suite, start, source.packages)
    return _SourceFiles(image.disk, image.kernel, image.initrd)


class _Build:
    def __init__(self, settings: Settings, spec: TemplateSpec, outputs: list[Output],
                 host: str, start: StartFn, log: BuildLog, report: Report,
                 references: References) -> None:
        self.settings, self.spec, self.outputs = settings, spec, outputs
        self.references = references
        self.host, self.start = host, start
        self.log, self.report = log, report
        # Lowercase, short and unique: it is a VM name (and the guest's hostname) too.
        self.vm = f"gp-build-{spec.name[:30]}-{uuid.uuid4().hex[:6]}"
        self.made_template = False
        self.made_vm = False
        self.built_disk: Path | None = None
        self.files: _SourceFiles | None = None

    def step(self, percent: int, message: str) -> None:
        self.log.step(message)
        self.report(percent, message)

    def run(self, staging: Path) -> tuple[list[ExportedOutput], dict[str, Any] | None]:
        spec = self.spec
        self.step(2, f"source: {spec.source.describe()}")
        files = self.files = _source_files(self.settings, spec, self.start)
        self.step(8, f"importing the source as temporary template {self.vm}")
        import_template(self.settings, self.vm, str(files.disk), self.host, start=self.start,
                        kernel=str(files.kernel) if files.kernel else None,
                        initrd=str(files.initrd) if files.initrd else None,
                        references=self.references)
        self.made_template = True
        self.step(15, f"booting build VM {self.vm} on {self.host} (waiting up to "
                  f"{spec.ssh_timeout:.0f} s for SSH and cloud-init)")
        self.made_vm = True
        try:
            create_vm(self.settings, VmRequest(
                self.vm, self.vm, spec.resources.cpus, spec.resources.memory_mib,
                spec.resources.disk_gib), self.host, timeout=spec.ssh_timeout)
        except GlasspaneError as exc:
            raise self.log.failed("boot", f"the build VM did not become reachable: "
                                  f"{exc.message}", hint=exc.hint) from None
        conn = SshConnection(guest_target(self.settings, self.host, self.vm),
                             self.settings.runtime_dir)
        try:
            count = max(1, len(spec.provisioners))
            for index, provisioner in enumerate(spec.provisioners):
                self.report(25 + 35 * index // count, f"running {provisioner.where}")
                run_provisioner(conn, provisioner, self.log, spec.name,
                                playbook_sandbox(self.settings))
            if spec.generalize:
                self.report(60, "generalizing")
                generalize(conn, self.log)
        finally:
            conn.close()
        self.step(63, "shutting the build VM down")
        if not shutdown_vm(self.settings, self.vm, self.host, timeout=SHUTDOWN_TIMEOUT):
            raise self.log.failed("shutdown", f"the build VM did not shut down within "
                                  f"{SHUTDOWN_TIMEOUT} s; its disk may be inconsistent")
        disk = vm_info(self.settings, self.vm, self.host).disk
        if disk is None:
            raise self.log.failed("shutdown", "the build VM's disk is gone")
        exported = []
        for index, output in enumerate(self.outputs):
            self.step(65 + 30 * index // len(self.outputs),
                      f"writing and verifying {output.filename(spec.name)}")
            exported.append(export_output(Path(disk), spec, output, staging, self.start,
                                          str(self.log.path)))
        # The template glasspane keeps is the qcow2 deliverable itself when there is one
        # (verified identical to the built disk): VMs then run exactly what was shipped.
        qcow2 = next((staging / o.file for o in exported if o.format == "qcow2"), None)
        boot = None
        if files.kernel is not None:
            boot = {"kernel": f"{spec.name}.vmlinuz", "cmdline": VmDefaults.CMDLINE,
                    "initrd": f"{spec.name}.initrd" if files.initrd else None,
                    "note": "the disk has no bootloader: boot it with this kernel and initrd"}
            shutil.copyfile(files.kernel, staging / f"{spec.name}.vmlinuz")
            if files.initrd is not None:
                shutil.copyfile(files.initrd, staging / f"{spec.name}.initrd")
        self.built_disk = qcow2 or Path(disk)
        return exported, boot

    def register(self) -> TemplateInfo:
        """The built disk as template `name` in glasspane's store (replacing the previous
        one, which nothing uses: checked before the build began and again now)."""
        name = self.spec.name
        with host_driver(self.settings, self.host) as driver:
            exists = any(t.name == name for t in templates_on(driver, self.settings,
                                                               self.host))
        if exists:
            remove_template(self.settings, name, self.host)
        files = self.files
        assert files is not None and self.built_disk is not None
        # The built disk is glasspane's own output or the build VM's volume: its backing file,
        # if any, is the hypervisor's.
        return import_template(self.settings, name, str(self.built_disk), self.host,
                               start=self.start,
                               kernel=str(files.kernel) if files.kernel else None,
                               initrd=str(files.initrd) if files.initrd else None,
                               references=FOLLOW_ANYWHERE)

    def cleanup(self) -> None:
        if self.made_vm:
            with suppress(Exception):
                destroy_vm(self.settings, self.vm, self.host)
        if self.made_template:
            with suppress(Exception):
                remove_template(self.settings, self.vm, self.host)


def build_template(settings: Settings, spec: TemplateSpec, *, only: tuple[str, ...] = (),
                   output_dir: Path | None = None, host: str = "local", register: bool = True,
                   start: StartFn = no_progress, echo: Callable[[str], None] | None = None,
                   report: Report = no_report,
                   references: References = STANDALONE) -> BuildResult:
    """Build `spec`; `references` says which backing files or parents the spec's source
    image may have read (the local CLI: anywhere; the server: none)."""
    outputs = select_outputs(spec, only)
    directory = (output_dir or default_output_dir(spec)).absolute()
    directory.parent.mkdir(parents=True, exist_ok=True)
    if register and (users := _users_of_template(settings, host, spec.name)):
        raise Conflict(f"template {spec.name!r} on host {host} is in use by "
                       f"{', '.join(users)}: a new build could not replace it",
                       hint="destroy those VMs first, or build with --no-register")
    began, built_at = time.monotonic(), dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    staging = Path(tempfile.mkdtemp(prefix=f".{directory.name}.part-", dir=directory.parent))
    staging.chmod(0o755)  # mkdtemp's 0700 would become the published directory's
    # Beside the outputs' directory while building (a failed build keeps only this), moved
    # into it with the outputs when the build succeeds.
    log_path = directory.with_name(directory.name + ".build.log")
    log = BuildLog(log_path, echo)
    build = _Build(settings, spec, outputs, host, start, log, report, references)
    try:
        try:
            exported, boot = build.run(staging)
            document = manifest(spec, built_at, time.monotonic() - began, exported, boot)
            (staging / "manifest.json").write_text(json.dumps(document, indent=2) + "\n")
            template = None
            if register:
                build.step(96, f"registering template {spec.name} on {host}")
                template = build.register()
        except BaseException as exc:
            if not isinstance(exc, BuildFailed):
                log.step(f"failed: {exc}")
            raise
        finally:
            build.step(99, f"removing build VM {build.vm}")
            build.cleanup()
            log.close()
        os.replace(log_path, staging / "build.log")
        _publish(staging, directory)
        report(100, "built")
        return BuildResult(spec.name, directory, document, template)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _publish(staging: Path, directory: Path) -> None:
    """Swap the staging directory in for the previous build: two renames."""
    old = None
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        os.replace(directory, old)
    os.replace(staging, directory)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)

