"""Whole virtual machines inside one archive (XVA, OVA): the VM's settings and its disks."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from glasspane.images.base import DiskImage, Problem
from glasspane.images.source import ByteSource

DEFAULT_VCPUS = 1
DEFAULT_MEMORY_MIB = 1024


@dataclass
class VmDisk:
    name: str
    image: DiskImage


@dataclass
class VmImage:
    """A VM read from an archive; `disks` are in their boot order (XVA userdevice, OVF order)."""

    name: str
    vcpus: int
    memory_mib: int
    disks: list[VmDisk] = field(default_factory=list)
    format_name: str = ""
    path: str = ""
    source: ByteSource | None = None
    details: dict[str, object] = field(default_factory=dict)
    # Archive-level validation beyond the disks' own (XVA chunk checksums, OVA manifest).
    archive_check: Callable[[], list[Problem]] | None = None

    def close(self) -> None:
        for disk in self.disks:
            disk.image.close()
        if self.source is not None:
            self.source.close()


@dataclass
class VmSettings:
    """What a VM archive writer records about the VM."""

    name: str
    vcpus: int = DEFAULT_VCPUS
    memory_mib: int = DEFAULT_MEMORY_MIB
    disk_names: list[str] = field(default_factory=list)
