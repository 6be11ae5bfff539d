"""Creating and destroying VMs; shared by the CLI and (later) the API.

`create_vm` makes a linked clone of a template, attaches a cloud-init NoCloud seed, starts the
VM and waits until SSH answers.  Each step registers how to undo itself; a failure unwinds them
in reverse, so a failed creation leaves no domain, disk or seed behind.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from glasspane.enums import DiskBus, Firmware, PowerState, VmAction, VmDefaults
from glasspane.errors import NotFound, UsageError
from glasspane.guests.access import ssh_target
from glasspane.guests.cloudinit import Seed, write_seed_iso
from glasspane.guests.console import ConsoleWatch, clean_console
from glasspane.guests.keys import management_public_key
from glasspane.guests.readiness import ssh_banner, wait_cloud_init, wait_for
from glasspane.guests.ssh import SshConnection
from glasspane.hosts.service import has_storage, host_driver
from glasspane.hypervisors import faults
from glasspane.hypervisors.base import DiskAttach, NicAttach, VmSpec
from glasspane.hypervisors.capabilities import (
    Capability,
    Driver,
    HostTemplates,
    Provisioning,
    require,
    supports,
)
from glasspane.settings import Settings
from glasspane.templates.service import SUFFIX

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")  # also the guest's hostname
_LABEL_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,62}$")
_LABEL_VALUE = re.compile(r"^[^\x00-\x1f\x7f]{0,255}$")


def parse_labels(pairs: list[str] | tuple[str, ...]) -> dict[str, str]:
    """`KEY=VALUE` strings as labels, each checked."""
    labels = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"label {pair!r}: expected KEY=VALUE")
        labels[key] = value
    check_labels(labels)
    return labels


def check_labels(labels: dict[str, str]) -> None:
    for key, value in labels.items():
        if not _LABEL_KEY.match(key):
            raise UsageError(f"invalid label key {key!r}",
                             hint="letters, digits, '.', '_', '/' and '-', at most 63")
        if not _LABEL_VALUE.match(value):
            raise UsageError(f"invalid value for label {key!r}",
                             hint="at most 255 characters, no control characters")


def check_name(name: str) -> None:
    if not _NAME.match(name):
        raise UsageError(f"invalid VM name {name!r}",
                         hint="lowercase letters, digits and '-' (it becomes the hostname)")


@dataclass
class VmRequest:
    name: str
    template: str
    cpus: int = VmDefaults.CPUS
    memory_mib: int = VmDefaults.MEMORY_MIB
    disk_gib: int | None = None
    ssh_keys: list[str] = field(default_factory=list)
    user_data: str | None = None
    network_config: str | None = None
    linked: bool = True
    wait_ready: bool = True  # SSH answers and cloud-init has finished; else: an address
    labels: dict[str, str] = field(default_factory=dict)  # kept with the VM on its host
    network: str | None = None  # libvirt network or XenServer network; default: the usual
    disks: list[tuple[int, DiskBus]] = field(default_factory=list)  # data disks: GiB, bus
    nics: list[tuple[str, str | None]] = field(default_factory=list)  # network, MAC
    firmware: Firmware = Firmware.BIOS


@dataclass(frozen=True)
class CreatedVm:
    name: str
    host: str
    addresses: list[str]
    ssh: str


class _Undo:
    def __init__(self) -> None:
        self.steps: list[Callable[[], None]] = []

    def push(self, step: Callable[[], None]) -> None:
        self.steps.append(step)

    def unwind(self) -> None:
        for step in reversed(self.steps):
            try:
                step()
            except Exception:  # noqa: S112 - keep unwinding; the original error matters
                continue


def _template_files(driver: Provisioning, settings: Settings, template: str
                    ) -> dict[str, str]:
    vols = {v.name: v for v in driver.list_volumes(settings.template_storage)}
    if template + SUFFIX not in vols:
        raise UsageError(f"no template named {template!r}",
                         hint="`glasspane template list` shows them")
    files = {"disk": vols[template + SUFFIX].path,
             "capacity": str(vols[template + SUFFIX].capacity)}
    for suffix in (".vmlinuz", ".initrd"):
        if template + suffix in vols:
            files[suffix] = vols[template + suffix].path
    return files


Report = Callable[[int, str], None]


def no_report(percent: int, message: str) -> None:
    """A `Report` that tells no one."""
    del percent, message


def create_vm(settings: Settings, request: VmRequest, host: str = "local",
              timeout: float = 300, report: Report = no_report) -> CreatedVm:
    """`report(percent, step)` hears of each step (the API's task progress)."""
    check_name(request.name)
    check_labels(request.labels)
    from glasspane.vms.hardware import check_mac, check_networks
    for _, mac in request.nics:
        if mac:
            check_mac(mac)
    check_networks(settings, host, [network for network, _ in request.nics])
    with host_driver(settings, host) as driver:
        if supports(driver, Capability.HOST_TEMPLATES):
            return _create_from_host_template(
                settings, require(driver, Capability.HOST_TEMPLATES, "creating a VM"),
                request, host, timeout, report)
        return _create(settings, require(driver, Capability.PROVISIONING, "creating a VM"),
                       request, host, timeout, report)


def _create_from_host_template(settings: Settings, driver: HostTemplates, request: VmRequest,
                               host: str, timeout: float, report: Report) -> CreatedVm:
    """A host that keeps its own templates (XenServer): clone the template VM, attach the
    seed as a disk, start (the driver undoes its own steps); then wait as for any VM, and
    destroy it if that fails."""
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seed-", dir=settings.cache_dir) as work:
        iso = Path(work) / "seed.iso"
        write_seed_iso(_seed(settings, request), iso)
        addresses = driver.provision_vm(
            request.template, request.name, request.cpus, request.memory_mib,
            (request.disk_gib or 0) << 30 or None, str(iso), timeout, report,
            full=not request.linked, network=request.network,
            disks=tuple(size << 30 for size, _ in request.disks),
            nics=tuple((network, mac.lower() if mac else None)
                       for network, mac in request.nics),
            firmware=request.firmware)
    try:
        banner = _wait_ready(settings, driver, request, host, addresses[0], timeout, report)
    except BaseException:
        with suppress(Exception):
            driver.destroy_vm(request.name)
        raise
    return CreatedVm(request.name, host, addresses, banner)


def _wait_ready(settings: Settings, driver: Driver, request: VmRequest, host: str,
                address: str, timeout: float, report: Report,
                watch: ConsoleWatch | None = None) -> str:
    """SSH answers, then cloud-init has finished (checked over glasspane's key); the SSH
    banner, or "" when the request does not wait."""
    if not request.wait_ready:
        return ""
    report(50, f"waiting for SSH at {address}")
    banner = wait_for(f"SSH on VM {request.name} ({address})",
                      lambda: ssh_banner(address), timeout, host, watch=watch)
    uuid_ = next(v.uuid for v in driver.list_vms() if v.name == request.name)
    report(70, "waiting for cloud-init to finish")
    # Ready means ready for glasspane too: its key installed, the user-data applied.
    wait_cloud_init(SshConnection(ssh_target(settings, host, request.name, uuid_, address),
                                  settings.runtime_dir), timeout, watch)
    return banner


def _console_watch(driver: Provisioning, name: str, host: str) -> ConsoleWatch:
    """A watch on the new VM's serial console (libvirt hosts, the ones that build VMs from
    glasspane's own volumes: the log is readable where the host is this machine; elsewhere
    only the VM's power state is watched)."""
    from glasspane.hypervisors.libvirt_domain import serial_log
    from glasspane.hypervisors.libvirt_driver import is_local_uri
    local = is_local_uri(driver.uri)
    accel = driver.acceleration()
    if accel.kind != "kvm":
        hint = "its kernel is not booting under TCG: check the template's disk and kernel"
    elif local:
        hint = (f"it runs under KVM ({accel.reason}); if KVM does not really run guests "
                "here, set GLASSPANE_ACCEL=tcg and create it again")
    else:
        hint = f"it runs under KVM ({accel.reason}): check that KVM runs guests on {host}"
    return ConsoleWatch(serial_log(name) if local else None, lambda: driver.vm_state(name),
                        vm=name, host=host, hint=hint)


def _create(settings: Settings, driver: Provisioning, request: VmRequest, host: str,
            timeout: float, report: Report) -> CreatedVm:
    undo = _Undo()
    try:
        if any(v.name == request.name for v in driver.list_vms()):
            raise faults.vm_taken(host, request.name)
        files = _template_files(driver, settings, request.template)
        report(5, "making the disk")
        driver.ensure_storage(settings.vm_storage)
        capacity = max(int(files["capacity"]), (request.disk_gib or 0) << 30)
        disk = driver.create_disk(settings.vm_storage, f"{request.name}{SUFFIX}",
                                  files["disk"], capacity, request.linked)
        undo.push(lambda: driver.delete_volume(settings.vm_storage, disk.name))
        data_disks = _data_disks(driver, settings, request, undo)
        report(15, "writing the cloud-init seed")
        seed_volume = _upload_seed(driver, settings, request, undo)
        spec = VmSpec(request.name, request.cpus, request.memory_mib, disk.path, seed_volume,
                      files.get(".vmlinuz"), files.get(".initrd"),
                      VmDefaults.CMDLINE if ".vmlinuz" in files else None,
                      network=request.network or "default",
                      template=request.template, labels=dict(request.labels),
                      data_disks=data_disks,
                      nics=tuple(NicAttach(network, mac.lower() if mac else None)
                                 for network, mac in request.nics),
                      firmware=request.firmware,
                      # Its own UEFI variable store, beside its disk (libvirt copies it
                      # from OVMF's template at the first start, deletes it with the VM).
                      nvram=str(Path(disk.path).with_name(f"{request.name}-nvram.fd"))
                      if request.firmware == Firmware.UEFI else None)
        report(25, "starting the VM")
        driver.create_vm(spec)
        undo.push(lambda: driver.destroy_vm(request.name))
        report(35, "waiting for an address")
        watch = _console_watch(driver, request.name, host)
        address = wait_for(f"an address for VM {request.name}",
                           lambda: next(iter(driver.vm_addresses(request.name)), None),
                           timeout, host, watch=watch)
        banner = _wait_ready(settings, driver, request, host, address, timeout, report, watch)
        return CreatedVm(request.name, host, driver.vm_addresses(request.name), banner)
    except BaseException:
        undo.unwind()
        raise


def _data_disks(driver: Provisioning, settings: Settings, request: VmRequest,
                undo: _Undo) -> tuple[DiskAttach, ...]:
    """The request's empty data disks, each a volume of the VM's own."""
    made = []
    for index, (size_gib, bus) in enumerate(request.disks, start=1):
        volume = f"{request.name}-data{index}{SUFFIX}"
        info = driver.create_blank_disk(settings.vm_storage, volume, size_gib << 30)
        undo.push(functools.partial(driver.delete_volume, settings.vm_storage, info.name))
        made.append(DiskAttach(info.path, bus))
    return tuple(made)


def _seed(settings: Settings, request: VmRequest) -> Seed:
    # glasspane's own key beside the user's: containers and provisioning go through it.
    keys = [*request.ssh_keys, management_public_key(settings)]
    return Seed(f"{request.name}-{uuid.uuid4().hex[:12]}", request.name, keys,
                request.user_data, request.network_config)


def _upload_seed(driver: Provisioning, settings: Settings, request: VmRequest,
                 undo: _Undo) -> str:
    seed = _seed(settings, request)
    settings.cache_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="seed-", dir=settings.cache_dir) as work:
        iso = Path(work) / "seed.iso"
        write_seed_iso(seed, iso)
        volume = f"{request.name}-seed.iso"
        info = driver.upload_volume(settings.vm_storage, volume, str(iso), lambda n: None)
    undo.push(lambda: driver.delete_volume(settings.vm_storage, volume))
    return info.path


def destroy_vm(settings: Settings, name: str, host: str = "local") -> None:
    """Stop and forget the VM, and delete its disk and seed."""
    with host_driver(settings, host) as connected:
        if supports(connected, Capability.HOST_TEMPLATES):  # its disks are its own
            require(connected, Capability.HOST_TEMPLATES, "destroying a VM").destroy_vm(name)
            return
        driver = require(connected, Capability.PROVISIONING, "destroying a VM")
        attached = _attached_volumes(connected, name)
        driver.destroy_vm(name)
        if not has_storage(driver, settings.vm_storage):
            return
        for volume in driver.list_volumes(settings.vm_storage):
            if not (volume.name in (f"{name}{SUFFIX}", f"{name}-seed.iso") or
                    volume.name in attached):
                continue
            # Never a volume something else still uses: another VM's disk, the backing
            # file of a volume made over it (a template's, another VM's chain).
            if driver.volume_users(volume.path):
                continue
            with suppress(NotFound):
                driver.delete_volume(settings.vm_storage, volume.name)


def _attached_volumes(driver: Driver, name: str) -> set[str]:
    """The volumes glasspane made for VM `name` that it holds: its disks and ISO copy (by
    the names glasspane gives them, `NAME-...`; a disk attached from elsewhere is not
    its own)."""
    if not supports(driver, Capability.HARDWARE):
        return set()
    found = require(driver, Capability.HARDWARE, "destroying a VM").vm_hardware(name)
    names = [d.volume for d in found.disks] + [c.image or "" for c in found.cdroms]
    return {v for v in names if v.startswith(f"{name}-")}


def vm_action(settings: Settings, name: str, action: str, host: str = "local") -> PowerState:
    """start | reboot | pause | resume; returns the new power state."""
    with host_driver(settings, host) as connected:
        driver = require(connected, Capability.POWER, f"{action} of a VM")
        driver.vm_action(name, action)
        return driver.vm_state(name)


def shutdown_vm(settings: Settings, name: str, host: str = "local", timeout: float = 90
                ) -> bool:
    """Ask the guest to shut down; power it off if it has not after `timeout` s.  Returns
    whether the shutdown was graceful."""
    with host_driver(settings, host) as connected:
        driver = require(connected, Capability.POWER, "shutting down a VM")
        if driver.vm_state(name) == PowerState.HALTED:
            return True
        driver.vm_action(name, VmAction.SHUTDOWN)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if driver.vm_state(name) == PowerState.HALTED:
                return True
            time.sleep(1)
        driver.vm_action(name, VmAction.POWEROFF)
        return False


def set_resources(settings: Settings, name: str, host: str, cpus: int | None,
                  memory_mib: int | None) -> None:
    """The VM's vCPUs and/or memory from its next boot; Conflict where the host's driver
    cannot change them."""
    with host_driver(settings, host) as driver:
        require(driver, Capability.RESOURCES, "changing a VM's vCPUs or memory",
                hint="change them with the hypervisor's own tools"
                ).set_resources(name, cpus, memory_mib)


def snapshot_vm(settings: Settings, name: str, snapshot: str, host: str = "local") -> None:
    with host_driver(settings, host) as driver:
        require(driver, Capability.SNAPSHOTS, "a snapshot").snapshot_vm(name, snapshot)


def snapshot_names(settings: Settings, name: str, host: str = "local") -> list[str]:
    with host_driver(settings, host) as driver:
        return require(driver, Capability.SNAPSHOTS, "listing snapshots").list_snapshots(name)


def revert_vm(settings: Settings, name: str, snapshot: str, host: str = "local") -> None:
    from glasspane.containers.sessions import forget_vm
    with host_driver(settings, host) as driver:
        require(driver, Capability.SNAPSHOTS, "reverting to a snapshot").revert_vm(name,
                                                                                    snapshot)
    forget_vm(host, name)


@dataclass(frozen=True)
class VmDetails:
    name: str
    host: str
    power_state: str
    addresses: list[str]
    snapshots: list[str]
    disk: str | None
    console_log: str


def list_vms(settings: Settings, host: str = "local") -> list[dict[str, object]]:
    """The host's VMs with their power state, and addresses for the running ones."""
    with host_driver(settings, host) as driver:
        return [dict(dataclasses.asdict(v),
                     addresses=driver.vm_addresses(v.name)
                     if v.power_state == PowerState.RUNNING
                     else [])
                for v in driver.list_vms()]


def vm_info(settings: Settings, name: str, host: str = "local",
            with_console: bool = True) -> VmDetails:
    from glasspane.hypervisors.libvirt_domain import serial_log
    with host_driver(settings, host) as driver:
        state = driver.vm_state(name)
        disks: list[str] = []
        if supports(driver, Capability.PROVISIONING) and \
                has_storage(driver, settings.vm_storage):
            volumes = require(driver, Capability.PROVISIONING, "listing a VM's disks")
            disks = [v.path for v in volumes.list_volumes(settings.vm_storage)
                     if v.name == f"{name}{SUFFIX}"]
        snapshots: list[str] = []
        if supports(driver, Capability.SNAPSHOTS):
            snapshots = require(driver, Capability.SNAPSHOTS,
                                "listing snapshots").list_snapshots(name)
        return VmDetails(name, host, state,
                         driver.vm_addresses(name) if state == PowerState.RUNNING else [],
                         snapshots, disks[0] if disks else None,
                         serial_log(name) if with_console else "")


def console_log(settings: Settings, name: str, host: str = "local", lines: int = 50) -> str:
    """The end of the VM's serial console (local hosts: the log file libvirt writes)."""
    details = vm_info(settings, name, host)
    try:
        text = Path(details.console_log).read_text(errors="replace")
    except OSError as exc:
        raise UsageError(f"cannot read the console of VM {name}: {exc.strerror}",
                         hint="console logs are readable on the VM's own host") from None
    # Terminal colours and carriage returns are for a terminal, not for a log view.
    text = clean_console(text)
    return "\n".join(text.splitlines()[-lines:])


MAX_PARALLEL_CREATES = 4
MAX_PARALLEL_ACTIONS = 8

T = TypeVar("T")


def on_each(names: list[str], action: Callable[[str], T], workers: int = MAX_PARALLEL_ACTIONS
            ) -> list[tuple[str, T | Exception]]:
    """Run `action` for each VM name in parallel (bounded); a failure is that VM's result,
    never the others'."""
    from concurrent.futures import ThreadPoolExecutor

    def one(name: str) -> tuple[str, T | Exception]:
        try:
            return name, action(name)
        except Exception as exc:  # reported per VM by the caller
            return name, exc

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names)))) as pool:
        return list(pool.map(one, names))


def create_vms(settings: Settings, requests: list[VmRequest], host: str = "local",
               timeout: float = 300) -> list[CreatedVm | Exception]:
    """Create several VMs at once, at most MAX_PARALLEL_CREATES at a time; one failing (and
    rolling back) does not stop the others.  Results in the order of `requests`."""
    from concurrent.futures import ThreadPoolExecutor

    def one(request: VmRequest) -> CreatedVm | Exception:
        try:
            return create_vm(settings, request, host, timeout)
        except Exception as exc:  # reported per VM by the caller
            return exc

    with host_driver(settings, host) as driver:  # shared storage made once, before the fan-out
        if supports(driver, Capability.PROVISIONING):
            require(driver, Capability.PROVISIONING, "creating VMs").ensure_storage(
                settings.vm_storage)
    with ThreadPoolExecutor(max_workers=min(MAX_PARALLEL_CREATES, len(requests))) as pool:
        return list(pool.map(one, requests))


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    output: str        # stdout and stderr as they came, at most `limit` bytes of it
    truncated: bool


def exec_in_vm(settings: Settings, name: str, command: list[str], host: str = "local",
               timeout: float = 60, limit: int = 1 << 20) -> ExecResult:
    """Run `command` (an argument list, quoted for the VM's shell one by one, never joined
    into a string) in VM `name` as glasspane's user over the kept SSH connection; past
    `timeout` s it is killed (GuestUnreachable)."""
    from glasspane.guests.access import guest_target
    from glasspane.guests.ssh import SshConnection
    if not command:
        raise UsageError("no command given")
    kept: list[bytes] = []
    size = 0

    def keep(chunk: bytes) -> None:
        nonlocal size
        if size < limit:
            kept.append(chunk[:limit - size])
        size += len(chunk)

    connection = SshConnection(guest_target(settings, host, name), settings.runtime_dir)
    status = connection.stream(command, keep, timeout=timeout)
    return ExecResult(status, b"".join(kept).decode(errors="replace"), size > limit)


def ssh_command(settings: Settings, name: str, host: str = "local", user: str = "debian",
                identity: str | None = None, command: tuple[str, ...] = ()) -> list[str]:
    """The ssh command line that reaches VM `name` (as an argument list, never a string)."""
    details = vm_info(settings, name, host)
    if not details.addresses:
        raise UsageError(f"VM {name} has no address (it is {details.power_state})",
                         hint="start it first")
    args = ["ssh", "-o", "StrictHostKeyChecking=accept-new"]
    if identity:
        args += ["-i", identity]
    return [*args, f"{user}@{details.addresses[0]}", *command]
