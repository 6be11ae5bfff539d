"""Every operation on VMs, each written once: its command and result, its rule (role, the
power states it starts from, whether it is a task) and its handler, which calls the same
service functions the CLI's local commands do.  Task handlers bring the host's inventory up
to date afterwards, whatever the outcome, so the pane shows the truth as the task ends."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, model_validator
from sqlalchemy import select

from glasspane.enums import (
    VM_ACTION_STATES,
    DiskBus,
    Firmware,
    HardwareLimits,
    PowerState,
    Role,
    VmAction,
    VmDefaults,
)
from glasspane.errors import Conflict, NotFound
from glasspane.inventory.models import Host, Template, Vm
from glasspane.operations.catalogue import (
    Admission,
    Command,
    Context,
    Operation,
    Result,
    Target,
    allowed,
    operation,
    register,
)
from glasspane.vms import service as vms

NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"   # a VM glasspane makes: also its guest's hostname
VM_PATH = "/vms/{host}/{name}"
VM_TARGET = "{host}/{name}"


def find_vm(session: Any, params: Mapping[str, str]) -> Target:
    """The VM named in the path, as the inventory knows it (NotFound otherwise)."""
    host, name = params["host"], params["name"]
    state = session.scalar(select(Vm.power_state).join(Host)
                           .where(Host.name == host, Vm.name == name))
    if state is None:
        raise NotFound(f"no VM named {name!r} on host {host}")
    return Target("vm", f"{host}/{name}", f"VM {name} on host {host}", state)


def vm_actions(role: Role | str, state: str | None) -> list[str]:
    """The operations a caller of `role` may run on a VM in `state` now."""
    return allowed("vm", find_vm, role, state)


@contextmanager
def refreshed(context: Context, host: str) -> Iterator[None]:
    """Host `host` brought up to date in the inventory after the block, whatever its
    outcome."""
    try:
        yield
    finally:
        if context.database is not None:
            from glasspane.inventory.handlers import refresh_host
            refresh_host(context.database, host)


class VmRef(Command):
    host: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128)


# -- create -----------------------------------------------------------------------------------
MAC = r"^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$"  # unicast: its first byte even
NETWORK = r"^[A-Za-z0-9_.:-][A-Za-z0-9 _.:/-]{0,127}$"


class DataDisk(Command):
    size_gib: int = Field(ge=1, le=HardwareLimits.DISK_GIB)
    bus: DiskBus = DiskBus.VIRTIO


class NicRequest(Command):
    network: str = Field(pattern=NETWORK)
    mac: str | None = Field(default=None, pattern=MAC)


class NewVm(Command):
    name: str = Field(pattern=NAME)
    template: str = Field(min_length=1, max_length=128)
    host: str = Field(default="local", min_length=1, max_length=64)
    cpus: int = Field(default=VmDefaults.CPUS, ge=1, le=64)
    memory_mib: int = Field(default=VmDefaults.MEMORY_MIB, ge=128, le=1 << 20)
    disk_gib: int | None = Field(default=None, ge=1, le=65536)
    ssh_keys: list[Annotated[str, Field(max_length=16384)]] = Field(default_factory=list,
                                                                    max_length=32)
    user_data: str | None = Field(default=None, max_length=256 * 1024)
    network_config: str | None = Field(default=None, max_length=64 * 1024)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    network: str | None = Field(default=None, min_length=1, max_length=128)
    full: bool = Field(default=False, description="a full copy, not a linked clone")
    wait_ready: bool = Field(default=True, description="wait until SSH answers and cloud-init "
                                                       "has finished, not only for an address")
    timeout: int = Field(default=300, ge=1, le=3600, description="seconds to wait for that")
    disks: list[DataDisk] = Field(default_factory=list, max_length=HardwareLimits.DISKS - 1,
                                  description="empty data disks after the template's")
    nics: list[NicRequest] = Field(default_factory=list, max_length=HardwareLimits.NICS,
                                   description="none: one NIC on `network`")
    firmware: Firmware = Firmware.BIOS


class CreatedVm(Result):
    name: str
    host: str
    addresses: list[str]
    ssh: str = Field(default="", description="the SSH banner it answered with")


def admit_new_vm(admission: Admission, command: NewVm) -> None:
    """A 400 for a bad label, a 404 for a template the inventory does not know on that host
    and a 409 for a name taken: now, not as a failed task later."""
    vms.check_labels(command.labels)
    with admission.database.session() as session:
        host = session.scalar(select(Host).where(Host.name == command.host))
        if host is None:
            raise NotFound(f"no host named {command.host!r}")
        if session.scalar(select(Template.id).where(Template.host_id == host.id,
                                                    Template.name == command.template)) is None:
            raise NotFound(f"no template named {command.template!r} on host {command.host}")
        if session.scalar(select(Vm.id).where(Vm.host_id == host.id,
                                              Vm.name == command.name)) is not None:
            raise Conflict(f"a VM named {command.name!r} already exists on host "
                           f"{command.host}")
        known_networks(host, [n.network for n in command.nics])


def known_networks(host: Host, wanted: list[str]) -> None:
    """NotFound (404) for a network the host did not have when the inventory last looked
    (the driver checks again: a network may come or go meanwhile)."""
    known = host.info.get("networks") if isinstance(host.info, dict) else None
    if not isinstance(known, list):
        return
    for network in wanted:
        if network not in known:
            raise NotFound(f"host {host.name} has no network {network!r}",
                           hint="its networks: " + (", ".join(map(str, known)) or "none"))


@operation("vm.create", "POST", "/vms", NewVm, CreatedVm, task=True, target_name=VM_TARGET,
           admit=admit_new_vm)
def create(context: Context, command: NewVm) -> CreatedVm:
    """Create a VM from a template (a linked clone unless `full`), start it and wait until
    SSH answers and cloud-init has finished."""
    request = vms.VmRequest(command.name, command.template, command.cpus, command.memory_mib,
                            command.disk_gib, list(command.ssh_keys), command.user_data,
                            command.network_config, not command.full,
                            command.wait_ready, labels=dict(command.labels),
                            network=command.network,
                            disks=[(d.size_gib, d.bus) for d in command.disks],
                            nics=[(n.network, n.mac) for n in command.nics],
                            firmware=command.firmware)
    with refreshed(context, command.host):
        made = vms.create_vm(context.settings, request, command.host, command.timeout,
                             context.progress)
    return CreatedVm(name=made.name, host=made.host, addresses=made.addresses, ssh=made.ssh)


# -- power ------------------------------------------------------------------------------------
class Power(VmRef):
    timeout: int = Field(default=90, ge=1, le=3600,
                         description="shutdown: seconds the guest has before it is powered "
                                     "off")


class PowerResult(Result):
    power_state: PowerState
    graceful: bool | None = Field(default=None,
                                  description="shutdown: whether the guest shut down itself")


def power(action: VmAction) -> Callable[[Context, Power], PowerResult]:
    def act(context: Context, command: Power) -> PowerResult:
        context.progress(10, f"{action} {command.name}")
        with refreshed(context, command.host):
            if action is VmAction.SHUTDOWN:
                graceful = vms.shutdown_vm(context.settings, command.name, command.host,
                                           command.timeout)
                return PowerResult(power_state=PowerState.HALTED, graceful=graceful)
            state = vms.vm_action(context.settings, command.name, action, command.host)
            return PowerResult(power_state=PowerState(state))
    return act


POWER_SUMMARIES = {
    VmAction.START: "Start the halted VM.",
    VmAction.SHUTDOWN: "Ask the guest to shut down; power it off after `timeout` seconds.",
    VmAction.POWEROFF: "Power the VM off at once.",
    VmAction.REBOOT: "Reboot the running VM.",
    VmAction.PAUSE: "Pause the running VM (it stays in memory).",
    VmAction.RESUME: "Resume the paused or suspended VM.",
    VmAction.SUSPEND: "Suspend the running VM (its memory saved to disk).",
}
for _action in VmAction:
    register(Operation(f"vm.{_action}", "POST", f"{VM_PATH}/actions/{_action}", Power,
                       PowerResult, power(_action), resolve=find_vm,
                       states=VM_ACTION_STATES[_action], task=True, target_name=VM_TARGET,
                       summary=POWER_SUMMARIES[_action]))


# -- snapshots --------------------------------------------------------------------------------
class Snapshot(VmRef):
    snapshot: str = Field(pattern=NAME, alias="name", description="the snapshot's name")


class SnapshotResult(Result):
    snapshot: str


class Revert(VmRef):
    snapshot: str = Field(min_length=1, max_length=255)


def admit_revert(admission: Admission, command: Revert) -> None:
    """A 404 now for a snapshot the VM does not have, naming the ones it has."""
    names = vms.snapshot_names(admission.settings, command.name, command.host)
    if command.snapshot not in names:
        raise NotFound(f"VM {command.name} on host {command.host} has no snapshot named "
                       f"{command.snapshot!r}",
                       hint=f"its snapshots: {', '.join(names[:20])}" if names else
                       "it has none: take one with `glasspane vm snapshot`")


@operation("vm.snapshot", "POST", f"{VM_PATH}/snapshots", Snapshot, SnapshotResult,
           resolve=find_vm, task=True, target_name=VM_TARGET)
def snapshot(context: Context, command: Snapshot) -> SnapshotResult:
    """Snapshot the VM (its disks, and its memory where the hypervisor keeps it)."""
    vms.snapshot_vm(context.settings, command.name, command.snapshot, command.host)
    return SnapshotResult(snapshot=command.snapshot)


@operation("vm.revert", "POST", f"{VM_PATH}/snapshots/{{snapshot}}/revert", Revert,
           SnapshotResult, resolve=find_vm, task=True, target_name=VM_TARGET,
           admit=admit_revert)
def revert(context: Context, command: Revert) -> SnapshotResult:
    """Return the VM to the snapshot: its disks, and its memory where the snapshot has it."""
    with refreshed(context, command.host):
        vms.revert_vm(context.settings, command.name, command.snapshot, command.host)
    return SnapshotResult(snapshot=command.snapshot)


# -- destroy ----------------------------------------------------------------------------------
class Destroyed(Result):
    destroyed: str


@operation("vm.destroy", "DELETE", VM_PATH, VmRef, Destroyed, resolve=find_vm, task=True,
           target_name=VM_TARGET)
def destroy(context: Context, command: VmRef) -> Destroyed:
    """Stop the VM at once and forget it, with its disk and seed."""
    with refreshed(context, command.host):
        vms.destroy_vm(context.settings, command.name, command.host)
    return Destroyed(destroyed=command.name)


# -- resources --------------------------------------------------------------------------------
class Resources(VmRef):
    cpus: int | None = Field(default=None, ge=1, le=64, description="vCPUs")
    memory_mib: int | None = Field(default=None, ge=128, le=1 << 20, description="MiB")

    @model_validator(mode="after")
    def something(self) -> Resources:
        if self.cpus is None and self.memory_mib is None:
            raise ValueError("name the cpus, the memory_mib or both")
        return self


class ResourcesSet(Result):
    cpus: int | None
    memory_mib: int | None
    applies: str = Field(description="when the VM runs with them")


@operation("vm.set", "PATCH", f"{VM_PATH}/resources", Resources, ResourcesSet,
           resolve=find_vm, target_name=VM_TARGET)
def set_resources(context: Context, command: Resources) -> ResourcesSet:
    """Change the VM's vCPUs and/or memory in its definition: the VM runs with them from its
    next boot (a running VM keeps what it has until then)."""
    with refreshed(context, command.host):
        vms.set_resources(context.settings, command.name, command.host, command.cpus,
                          command.memory_mib)
    return ResourcesSet(cpus=command.cpus, memory_mib=command.memory_mib,
                        applies="at the next boot")


# -- export -----------------------------------------------------------------------------------
class Export(VmRef):
    output: str = Field(min_length=1, max_length=128,
                        description="the stored image to write (its extension names the "
                                    "format unless `format` does)")
    format: str | None = Field(default=None, pattern="^(xva|ova|qcow2|vhd|vmdk|raw)$")
    disk: int = Field(default=0, ge=0, le=255)
    replace: bool = False


class Exported(Result):
    format: str
    name: str
    size: int
    sha256: str
    kind: str
    created_by: str
    created_at: str


def _store(admission_or_context: Admission | Context) -> Any:
    from glasspane.inventory.store import ImageStore
    settings = admission_or_context.settings
    return ImageStore(settings.data_dir, settings.store_reserve)


def _actor(context: Admission | Context) -> Any:
    from glasspane.inventory.store import Actor
    return Actor(context.caller.name, context.caller.role is Role.ADMIN)


def admit_export(admission: Admission, command: Export) -> None:
    _store(admission).check_new(command.output, command.replace, _actor(admission))


EXPORT_STATES = frozenset(PowerState) - {PowerState.RUNNING, PowerState.PAUSED}


@operation("vm.export", "POST", f"{VM_PATH}/export", Export, Exported, resolve=find_vm,
           states=EXPORT_STATES, task=True, pinned=True, target_name=VM_TARGET,
           admit=admit_export, hint="its disk is in use: shut it down first")
def export(context: Context, command: Export) -> Exported:
    """Export the halted VM into the image store: XVA or OVA (the whole VM), or one disk in
    any format (a task; download the result from /images/{output}/content)."""
    import dataclasses

    from glasspane.inventory.store_handlers import byte_progress
    from glasspane.vms.export import export_vm
    store, actor = _store(context), _actor(context)
    # Its result and its errors name the store's files by name, never the server's paths.
    places = {"DATA_DIR": context.settings.data_dir, "CACHE_DIR": context.settings.cache_dir}
    with store.confined(places):
        store.check_new(command.output, command.replace, actor)
        with store.staging() as work:
            target = work / command.output
            fmt = export_vm(context.settings, command.name, target, command.host,
                            command.format, command.disk, start=byte_progress(context.task))
            stored = store.adopt(target, command.output, actor, command.replace)
    return Exported(format=fmt, **store.confine(dataclasses.asdict(stored), places))


# -- exec -------------------------------------------------------------------------------------
class Exec(VmRef):
    command: list[Annotated[str, Field(max_length=65536)]] = Field(
        min_length=1, max_length=256,
        description="the program and its arguments (no shell string: each is quoted for the "
                    "VM on its own)")
    timeout: int = Field(default=60, ge=1, le=600)


class ExecResult(Result):
    exit_code: int
    output: str = Field(description="stdout and stderr as they came, at most 1 MiB")
    truncated: bool


@operation("vm.exec", "POST", f"{VM_PATH}/exec", Exec, ExecResult, resolve=find_vm,
           states=frozenset({PowerState.RUNNING}), target_name=VM_TARGET,
           hint="start it first",
           # The program alone goes to the audit log: arguments may carry secrets.
           audit_detail=lambda command: command.command[0][:200])
def exec_in_vm(context: Context, command: Exec) -> ExecResult:
    """Run a command in the running VM as glasspane's user and answer with its exit code
    and output (stdout and stderr as they came, at most 1 MiB): `vm ssh VM -- COMMAND`."""
    done = vms.exec_in_vm(context.settings, command.name, command.command, command.host,
                          command.timeout)
    return ExecResult(exit_code=done.exit_code, output=done.output, truncated=done.truncated)


# -- configure --------------------------------------------------------------------------------
class Configure(Command):
    vms: list[Annotated[str, Field(min_length=1, max_length=128)]] = Field(
        default_factory=list, max_length=1000)
    label: str | None = Field(default=None, min_length=1, max_length=320)
    playbook: str = Field(min_length=1, max_length=256 * 1024)
    playbook_name: str = Field(default="playbook.yml", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                               max_length=128)
    extra_vars: dict[str, Any] = Field(default_factory=dict, max_length=256)

    @model_validator(mode="after")
    def chosen(self) -> Configure:
        if not self.vms and not self.label:
            raise ValueError("name at least one VM (vms) or a label (label)")
        return self


class Configured(Result):
    playbook: str
    vms: list[str]
    status: int
    tasks: int
    recap: str
    output: str


def admit_configure(admission: Admission, command: Configure) -> None:
    """Refused now: ansible_* extra variables, plays that target the server itself, and any
    run where the server cannot make its sandbox (503)."""
    from glasspane.guests.ansible_checks import check_extra_vars, check_playbook
    from glasspane.guests.sandbox import Sandbox
    check_extra_vars(command.extra_vars)
    check_playbook(command.playbook, command.playbook_name)
    Sandbox.for_settings(admission.settings).check()


@operation("vm.configure", "POST", "/vms/configure", Configure, Configured, task=True,
           admit=admit_configure,
           object_name=lambda command: (",".join(command.vms) or
                                        f"label {command.label}")[:255])
def configure(context: Context, command: Configure) -> Configured:
    """Run an Ansible playbook (one file, sent in the body) on the named VMs and/or those
    with a label, as a task: progress counts the playbook's tasks; the recap is the result.
    It runs in the server's sandbox, never as the server: refused (503) where none can be
    made, and so are plays that target the server itself and ansible_* extra variables."""
    from glasspane.vms.configure import configure_vms
    # One file: the server cannot see the caller's roles.
    with tempfile.TemporaryDirectory(prefix="glasspane-playbook-") as work:
        playbook = Path(work) / Path(command.playbook_name).name
        playbook.write_text(command.playbook)
        done = configure_vms(context.settings, playbook, list(command.vms), command.label,
                             dict(command.extra_vars), report=context.progress)
    return Configured.model_validate(done)
