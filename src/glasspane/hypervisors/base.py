"""The interface every hypervisor driver implements, in glasspane's own vocabulary (hosts,
VMs, storage), free of any one hypervisor's terms."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable


def ip_addresses(reported: Iterable[object]) -> list[str]:
    """The values a guest reported that are IP addresses, in order, each once.

    A guest writes what its tools or DHCP client report, and an address goes on into the
    inventory, SSH command lines and Ansible's inventory: anything that does not parse as an
    address (a Jinja expression, an option) is dropped, and so is an IPv6 zone, whose text
    `ipaddress` accepts as it comes."""
    kept: list[str] = []
    for value in reported:
        try:
            address = ipaddress.ip_address(value if isinstance(value, str) else "")
        except ValueError:
            continue
        if getattr(address, "scope_id", None) is None and str(address) not in kept:
            kept.append(str(address))
    return kept


@dataclass(frozen=True)
class Acceleration:
    """How VMs on the host execute: 'kvm' (hardware) or 'tcg' (emulation), and why."""

    kind: str
    reason: str


@dataclass(frozen=True)
class StorageInfo:
    name: str
    path: str | None
    capacity: int
    allocation: int
    available: int
    active: bool


@dataclass(frozen=True)
class VolumeInfo:
    name: str
    path: str
    capacity: int      # guest-visible size
    allocation: int    # bytes used on the host
    format: str


@dataclass(frozen=True)
class NetworkInfo:
    name: str
    bridge: str
    active: bool


@dataclass(frozen=True)
class VmSummary:
    name: str
    uuid: str
    power_state: str  # running | paused | halted | suspended | crashed | unknown
    template: str | None = None       # what glasspane made it from, where the host keeps it
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class VmSpec:
    """What a driver needs to make and start a VM."""

    name: str
    cpus: int
    memory_mib: int
    disk: str             # path of the VM's disk on the host
    seed: str | None      # path of the cloud-init seed ISO on the host
    kernel: str | None    # direct kernel boot, for templates without a bootloader
    initrd: str | None
    cmdline: str | None
    network: str = "default"
    template: str | None = None
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class HostInfo:
    name: str
    uri: str
    driver: str
    hostname: str
    hypervisor: str
    cpu_model: str
    cpus: int
    memory_mib: int
    free_memory_mib: int
    acceleration: Acceleration
    storage: list[StorageInfo] = field(default_factory=list)
    vms: list[VmSummary] = field(default_factory=list)
    networks: list[NetworkInfo] = field(default_factory=list)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostInfo:
        """The inverse of dataclasses.asdict (what the API sends)."""
        return cls(**{**data, "acceleration": Acceleration(**data["acceleration"]),
                      "storage": [StorageInfo(**s) for s in data.get("storage", [])],
                      "vms": [VmSummary(**v) for v in data.get("vms", [])],
                      "networks": [NetworkInfo(**n) for n in data.get("networks", [])]})


class HypervisorDriver(Protocol):
    """A connection to one host.  Every method raises HostError (or HostUnreachable) from
    glasspane.errors, never the backend's own exceptions."""

    name: str
    uri: str

    def host_info(self) -> HostInfo: ...

    def list_vms(self) -> list[VmSummary]: ...

    def list_storage(self) -> list[StorageInfo]: ...

    def ensure_storage(self, name: str) -> StorageInfo:
        """The directory storage `name` on the host, created and started if missing."""
        ...

    def list_volumes(self, storage: str) -> list[VolumeInfo]: ...

    def upload_volume(self, storage: str, volume: str, source: str,
                      progress: Callable[[int], None]) -> VolumeInfo:
        """Copy the local file `source` into a new volume; nothing is left on failure."""
        ...

    def delete_volume(self, storage: str, volume: str) -> None: ...

    def create_disk(self, storage: str, volume: str, backing: str, capacity: int,
                    linked: bool = True) -> VolumeInfo:
        """A disk made from the file `backing`: copy-on-write over it (a linked clone), or a
        full copy; grown to `capacity` bytes."""
        ...

    def create_vm(self, spec: VmSpec) -> None:
        """Define and start the VM; nothing is left on failure."""
        ...

    def vm_addresses(self, name: str) -> list[str]:
        """The VM's IP addresses (IPv4 first), only values that parse as addresses."""
        ...

    def vm_action(self, name: str, action: str) -> None:
        """start | reboot | pause | resume | poweroff (at once) | shutdown (ask the guest)."""
        ...

    def vm_state(self, name: str) -> str: ...

    def snapshot_vm(self, name: str, snapshot: str) -> None: ...

    def revert_vm(self, name: str, snapshot: str) -> None: ...

    def list_snapshots(self, name: str) -> list[str]: ...

    def destroy_vm(self, name: str) -> None:
        """Stop the VM at once and forget it (its disks are the caller's)."""
        ...

    def volume_users(self, path: str) -> list[str]:
        """What depends on the file at `path`: VMs whose disks use it, volumes backed by it."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class ResourceSetter(Protocol):
    """A driver that can change a VM's vCPUs and memory in its definition (from its next
    boot)."""

    def set_resources(self, name: str, cpus: int | None, memory_mib: int | None) -> None: ...
