"""What hypervisor drivers hand back, in glasspane's own vocabulary (hosts, VMs, storage),
free of any one hypervisor's terms.  What a driver can do is in capabilities.py."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from glasspane.enums import DiskBus, Firmware, NicModel, PowerState


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
    power_state: PowerState
    template: str | None = None       # what glasspane made it from, where the host keeps it
    labels: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class DiskAttach:
    """A disk (a volume already made on the host) to attach to a new VM."""

    path: str
    bus: DiskBus = DiskBus.VIRTIO
    format: str = "qcow2"


@dataclass(frozen=True)
class NicAttach:
    network: str
    mac: str | None = None            # None: the hypervisor picks one
    model: NicModel = NicModel.VIRTIO


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
    data_disks: tuple[DiskAttach, ...] = ()  # after the boot disk, in order
    nics: tuple[NicAttach, ...] = ()         # none: one virtio NIC on `network`
    firmware: Firmware = Firmware.BIOS
    nvram: str | None = None                 # UEFI: the VM's own variable store, beside its disks


# -- a VM's hardware, as the Hardware capability reports it --------------------------------------
@dataclass(frozen=True)
class DiskInfo:
    device: str          # the guest's name for it (vda, sdb) or XenServer's device number
    size: int            # bytes the guest sees
    bus: str
    format: str
    volume: str          # the volume's name on the host (never a path)
    boot: bool           # the disk the VM boots from


@dataclass(frozen=True)
class CdromInfo:
    device: str
    image: str | None    # the ISO it holds (its volume's name), None when empty


@dataclass(frozen=True)
class NicInfo:
    mac: str
    network: str
    model: str


@dataclass(frozen=True)
class MachineHardware:
    firmware: Firmware
    boot_order: list[str]                 # hd | cdrom | network
    disks: list[DiskInfo] = field(default_factory=list)
    cdroms: list[CdromInfo] = field(default_factory=list)
    nics: list[NicInfo] = field(default_factory=list)


@dataclass(frozen=True)
class HardwareChange:
    """What a hardware change did: which device, and whether the running VM has it now
    (`live`) or only from its next boot."""

    device: str
    live: bool


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
                      "vms": [VmSummary(**{**v, "power_state": PowerState(v["power_state"])})
                              for v in data.get("vms", [])],
                      "networks": [NetworkInfo(**n) for n in data.get("networks", [])]})
