"""What a hypervisor driver can do, declared rather than guessed.

Every driver is a `Driver`: a connection to one host that can list what is on it
(`Inventory`).  Everything else is a capability: a small Protocol, and a `Capability` value
the driver lists in its `capabilities`.  Code outside `hypervisors/` never names a driver
class; it asks `supports(driver, Capability.X)`, or `require(driver, Capability.X, what)`,
which hands back the driver typed as that capability's Protocol, or raises
CapabilityMissing (409 in the API, a one-line error in the CLI) naming the host, the driver
kind and the capability.

Metrics, Migration and Backup are the next ones: their Protocols say what a driver will
implement; no driver declares them yet.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, Protocol, overload

from glasspane.enums import DiskBus, Firmware, NicModel, PowerState, VmAction
from glasspane.errors import CapabilityMissing
from glasspane.hypervisors.base import (
    Acceleration,
    HardwareChange,
    HostInfo,
    MachineHardware,
    NetworkInfo,
    StorageInfo,
    VmSpec,
    VmSummary,
    VolumeInfo,
)
from glasspane.hypervisors.channels import Channel
from glasspane.images.references import STANDALONE, References

Progress = Callable[[int], None]


class Capability(StrEnum):
    INVENTORY = "inventory"              # the host, its VMs, storage and networks
    POWER = "power"                      # start, shut down, pause... a VM
    SNAPSHOTS = "snapshots"
    PROVISIONING = "provisioning"        # VMs built from glasspane's own storage and disks
    HOST_TEMPLATES = "host-templates"    # VMs cloned from templates the host keeps itself
    IMAGE_TRANSFER = "image-transfer"    # disks and whole VMs (XVA) in and out of the host
    RESOURCES = "resources"              # a VM's vCPUs and memory, for its next boot
    CONTAINER_KEYS = "container-keys"    # the VM keys XenCenter shows containers from
    CONSOLE = "console"
    METRICS = "metrics"
    MIGRATION = "migration"
    BACKUP = "backup"
    HARDWARE = "hardware"                # a VM's disks, NICs, CD drives and firmware

    @property
    def label(self) -> str:
        return self.value.replace("-", " ")


# -- every driver ------------------------------------------------------------------------------
class Inventory(Protocol):
    def host_info(self) -> HostInfo: ...

    def list_vms(self) -> list[VmSummary]: ...

    def list_storage(self) -> list[StorageInfo]: ...

    def list_networks(self) -> list[NetworkInfo]: ...

    def acceleration(self) -> Acceleration:
        """How the host's VMs execute (kvm, tcg, xen) and why."""
        ...

    def vm_state(self, name: str) -> PowerState: ...

    def vm_addresses(self, name: str) -> list[str]:
        """The VM's IP addresses (IPv4 first), only values that parse as addresses."""
        ...


class Driver(Inventory, Protocol):
    """A connection to one host.  Its methods raise glasspane.errors, the same class for the
    same fault whatever the driver (hypervisors/faults.py), with the backend's exception as
    the cause: NotFound (no such VM, snapshot), Conflict (a name in use, a power state that
    does not allow the action), HostUnreachable, else HostError."""

    kind: str                              # "libvirt" | "xenapi"
    name: str
    uri: str
    capabilities: frozenset[Capability]

    def close(self) -> None: ...


# -- capabilities ------------------------------------------------------------------------------
class Power(Driver, Protocol):
    def vm_action(self, name: str, action: VmAction | str) -> None:
        """Checked against VM_ACTION_STATES first (faults.check_action): start | reboot |
        pause | resume | suspend | poweroff (at once) | shutdown (ask the guest)."""
        ...


class Snapshots(Driver, Protocol):
    def snapshot_vm(self, name: str, snapshot: str) -> None:
        """Conflict when the VM already has a snapshot of that name."""
        ...

    def revert_vm(self, name: str, snapshot: str) -> None: ...

    def list_snapshots(self, name: str) -> list[str]: ...


class Provisioning(Driver, Protocol):
    """VMs made from glasspane's own volumes: storage, disks over a template's, a VM."""

    def ensure_storage(self, name: str) -> StorageInfo:
        """The directory storage `name` on the host, created and started if missing."""
        ...

    def list_volumes(self, storage: str) -> list[VolumeInfo]: ...

    def upload_volume(self, storage: str, volume: str, source: str,
                      progress: Progress) -> VolumeInfo:
        """Copy the local file `source` into a new volume; nothing is left on failure."""
        ...

    def delete_volume(self, storage: str, volume: str) -> None: ...

    def create_disk(self, storage: str, volume: str, backing: str, capacity: int,
                    linked: bool = True) -> VolumeInfo:
        """A disk made from the file `backing`: copy-on-write over it (a linked clone), or a
        full copy; grown to `capacity` bytes."""
        ...

    def create_blank_disk(self, storage: str, volume: str, capacity: int) -> VolumeInfo:
        """An empty qcow2 disk of `capacity` bytes."""
        ...

    def create_vm(self, spec: VmSpec) -> None:
        """Define and start the VM; Conflict when the name is taken; nothing is left on
        failure."""
        ...

    def destroy_vm(self, name: str) -> None:
        """Stop the VM at once and forget it (its disks are the caller's)."""
        ...

    def volume_users(self, path: str) -> list[str]:
        """What depends on the file at `path`: VMs whose disks use it, volumes backed by it."""
        ...


class HostTemplates(Driver, Protocol):
    """VMs cloned from templates the host keeps itself (XenServer's template VMs)."""

    def list_templates(self, builtin: bool = False) -> list[tuple[str, str, int, bool]]:
        """The host's templates: name, UUID, disk size, whether one of the host's own
        built-in ones (no disk: an installer)."""
        ...

    def provision_vm(self, template: str, name: str, cpus: int, memory_mib: int,
                     disk_bytes: int | None, seed_iso: str, timeout: float = 300,
                     report: Callable[[int, str], None] = lambda p, m: None,
                     full: bool = False, network: str | None = None,
                     disks: tuple[int, ...] = (),
                     nics: tuple[tuple[str, str | None], ...] = (),
                     firmware: Firmware = Firmware.BIOS) -> list[str]:
        """A VM from the template, with the cloud-init seed, started; its addresses.  With
        `disks` (bytes each) empty data disks, with `nics` (network, MAC) these NICs in place
        of the template's, with `firmware` UEFI.  Conflict when the name is taken; nothing is
        left on failure."""
        ...

    def destroy_vm(self, name: str) -> None:
        """Stop the VM at once and destroy it with its disks (its own, cloned)."""
        ...


class ImageTransfer(Driver, Protocol):
    """Disks and whole VMs in and out of the host through its own transfer handlers."""

    def upload_disk(self, source: str, name: str, progress: Progress, sr: str | None = None,
                    references: References = STANDALONE) -> str:
        """A new disk `name` holding the image `source` (any format the toolkit reads); its
        UUID."""
        ...

    def import_xva(self, path: str, name: str, progress: Progress, template: bool = True,
                   sr: str | None = None) -> str:
        """The XVA at `path` as VM (or template) `name`; its UUID."""
        ...

    def export_xva(self, name: str, path: str, progress: Progress) -> None:
        """VM `name` as an XVA into `path`, whole or not at all."""
        ...

    def export_disk(self, name: str, index: int, fmt: str, path: str,
                    progress: Progress) -> int:
        """Disk `index` of VM `name` as `fmt` (raw or vhd) into `path`; its virtual size."""
        ...


class Resources(Driver, Protocol):
    def set_resources(self, name: str, cpus: int | None, memory_mib: int | None) -> None:
        """The VM's vCPUs and memory (None: unchanged) from its next boot.  Only while it is
        halted (Conflict otherwise)."""
        ...


class Hardware(Driver, Protocol):
    """A VM's disks, NICs and CD drives, changed while it runs where the hypervisor allows
    (each change says whether it is live or waits for the next boot)."""

    def vm_hardware(self, name: str) -> MachineHardware: ...

    def add_disk(self, name: str, size: int, bus: DiskBus, storage: str | None
                 ) -> HardwareChange:
        """A new empty disk of `size` bytes, the VM's own, in `storage` (libvirt's pool,
        XenServer's SR; None: the host's default)."""
        ...

    def resize_disk(self, name: str, device: str, size: int) -> HardwareChange:
        """Grow disk `device` to `size` bytes; Conflict for a size below its own."""
        ...

    def remove_disk(self, name: str, device: str) -> HardwareChange:
        """Detach disk `device` and delete it; Conflict for the boot disk of a running VM and
        for a disk that is not the VM's own (a template's, another VM's)."""
        ...

    def add_nic(self, name: str, network: str, mac: str | None, model: NicModel
                ) -> HardwareChange:
        """NotFound for a network the host does not have; Conflict for a MAC in use."""
        ...

    def remove_nic(self, name: str, mac: str) -> HardwareChange: ...

    def insert_cdrom(self, name: str, image: str, volume: str, storage: str | None
                     ) -> HardwareChange:
        """The ISO file `image` (on this machine) put in the VM's CD drive (one made when it
        has none) as volume `volume` of the host's `storage`."""
        ...

    def eject_cdrom(self, name: str) -> HardwareChange:
        """Empty the VM's CD drive (and delete the ISO's copy glasspane put there)."""
        ...


class ContainerKeys(Driver, Protocol):
    """The VM keys (other_config) XenCenter and Xen Orchestra show a VM's containers from."""

    def other_configs(self) -> dict[str, tuple[PowerState, str, dict[str, str]]]:
        """Every VM's power state, UUID and keys, by name."""
        ...

    def write_other_config(self, name: str, values: dict[str, str],
                           remove: Iterable[str] = ()) -> list[str]:
        """Set `values` and drop `remove` in one change; the keys changed."""
        ...

    def xscontainer_hosts(self) -> list[str]:
        """The pool's hosts running XenServer's own xscontainer (it owns the keys there)."""
        ...


# -- the next ones: declared, implemented by no driver yet -------------------------------------
@dataclass(frozen=True)
class VmMetrics:
    """A VM's use of the host over the last sampling interval."""

    cpu_percent: float          # of its vCPUs together
    memory_used_mib: int
    disk_read_bytes_s: float
    disk_write_bytes_s: float
    net_rx_bytes_s: float
    net_tx_bytes_s: float


class Console(Driver, Protocol):
    def open_serial(self, name: str) -> Channel:
        """The running VM's serial console, to read and type into; Conflict when it is not
        running or its driver has none."""
        ...

    def open_screen(self, name: str) -> Channel:
        """The running VM's screen: RFB from the VNC server's first byte."""
        ...


class Metrics(Driver, Protocol):
    def vm_metrics(self, name: str) -> VmMetrics: ...


class Migration(Driver, Protocol):
    def migrate_vm(self, name: str, target: str, live: bool = True) -> None:
        """Move VM `name` to host `target` of the same pool (XAPI) or to another host of the
        same driver (libvirt), running while it moves when `live`."""
        ...


class Backup(Driver, Protocol):
    def backup_vm(self, name: str, path: str, progress: Progress,
                  since: str | None = None) -> str:
        """A consistent copy of the VM's disks into `path` (only what changed after backup
        `since` when given); the backup's id."""
        ...

    def restore_vm(self, path: str, name: str, progress: Progress) -> None:
        """The backup at `path` as a new VM `name`."""
        ...


# -- asking for one ----------------------------------------------------------------------------
def supports(driver: Driver, capability: Capability) -> bool:
    return capability in driver.capabilities


@overload
def require(driver: Driver, capability: Literal[Capability.INVENTORY], what: str,
            hint: str | None = None) -> Driver: ...
@overload
def require(driver: Driver, capability: Literal[Capability.POWER], what: str,
            hint: str | None = None) -> Power: ...
@overload
def require(driver: Driver, capability: Literal[Capability.SNAPSHOTS], what: str,
            hint: str | None = None) -> Snapshots: ...
@overload
def require(driver: Driver, capability: Literal[Capability.PROVISIONING], what: str,
            hint: str | None = None) -> Provisioning: ...
@overload
def require(driver: Driver, capability: Literal[Capability.HOST_TEMPLATES], what: str,
            hint: str | None = None) -> HostTemplates: ...
@overload
def require(driver: Driver, capability: Literal[Capability.IMAGE_TRANSFER], what: str,
            hint: str | None = None) -> ImageTransfer: ...
@overload
def require(driver: Driver, capability: Literal[Capability.RESOURCES], what: str,
            hint: str | None = None) -> Resources: ...
@overload
def require(driver: Driver, capability: Literal[Capability.HARDWARE], what: str,
            hint: str | None = None) -> Hardware: ...
@overload
def require(driver: Driver, capability: Literal[Capability.CONTAINER_KEYS], what: str,
            hint: str | None = None) -> ContainerKeys: ...
@overload
def require(driver: Driver, capability: Literal[Capability.CONSOLE], what: str,
            hint: str | None = None) -> Console: ...
@overload
def require(driver: Driver, capability: Literal[Capability.METRICS], what: str,
            hint: str | None = None) -> Metrics: ...
@overload
def require(driver: Driver, capability: Literal[Capability.MIGRATION], what: str,
            hint: str | None = None) -> Migration: ...
@overload
def require(driver: Driver, capability: Literal[Capability.BACKUP], what: str,
            hint: str | None = None) -> Backup: ...


def require(driver: Driver, capability: Capability, what: str,
            hint: str | None = None) -> Any:
    """`driver` as the Protocol of `capability`; CapabilityMissing, naming the host, its
    driver kind and the capability, when it does not declare it.  `what` is the request
    that needs it ("uploading a disk"), `hint` where it can be done instead."""
    if capability not in driver.capabilities:
        raise CapabilityMissing(
            f"host {driver.name} ({driver.kind}) does not support {capability.label}, which "
            f"{what} needs", hint=hint)
    return driver


# Each capability's Protocol: what a driver that declares it implements.
PROTOCOLS: dict[Capability, type] = {
    Capability.INVENTORY: Driver, Capability.POWER: Power, Capability.SNAPSHOTS: Snapshots,
    Capability.PROVISIONING: Provisioning, Capability.HOST_TEMPLATES: HostTemplates,
    Capability.IMAGE_TRANSFER: ImageTransfer, Capability.RESOURCES: Resources,
    Capability.CONTAINER_KEYS: ContainerKeys, Capability.CONSOLE: Console,
    Capability.METRICS: Metrics, Capability.MIGRATION: Migration, Capability.BACKUP: Backup,
    Capability.HARDWARE: Hardware}
