"""What hypervisor drivers hand back, in glasspane's own vocabulary (hosts, VMs, storage),
free of any one hypervisor's terms.  What a driver can do is in capabilities.py."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from glasspane.enums import PowerState


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
                      "vms": [VmSummary(**{**v, "power_state": PowerState(v["power_state"])})
                              for v in data.get("vms", [])],
                      "networks": [NetworkInfo(**n) for n in data.get("networks", [])]})
