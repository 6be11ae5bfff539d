"""The interface every hypervisor driver implements, in glasspane's own vocabulary (hosts,
VMs, storage), free of any one hypervisor's terms."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


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
class VmSummary:
    name: str
    uuid: str
    power_state: str  # running | paused | halted | suspended | crashed | unknown


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


class HypervisorDriver(Protocol):
    """A connection to one host.  Every method raises HostError (or HostUnreachable) from
    glasspane.errors, never the backend's own exceptions."""

    name: str
    uri: str

    def host_info(self) -> HostInfo: ...

    def list_vms(self) -> list[VmSummary]: ...

    def close(self) -> None: ...
