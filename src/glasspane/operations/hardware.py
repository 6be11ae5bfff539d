"""A VM's hardware as operations of the catalogue: its disks, NICs and CD drive changed
(live where the hypervisor allows, else from the next boot, which each answer says), and
one read of all of it (the page's Hardware tab, `vm info`)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field
from sqlalchemy import select

from glasspane.enums import DiskBus, Firmware, HardwareLimits, NicModel, Role
from glasspane.hypervisors.base import HardwareChange
from glasspane.inventory.models import Host
from glasspane.operations.catalogue import Admission, Context, Result, Target, operation
from glasspane.operations.vms import (
    VM_PATH,
    VM_TARGET,
    VmRef,
    find_vm,
    known_networks,
    refreshed,
)
from glasspane.vms import hardware as service

DEVICE = r"^[a-z0-9]{1,16}$"          # vda, sdb; XenServer's device number
MAC = r"^[0-9a-fA-F][02468aceACE](:[0-9a-fA-F]{2}){5}$"  # unicast: its first byte even
IMAGE = r"^[A-Za-z0-9_+-][A-Za-z0-9._+-]{0,127}$"   # a name in the store, never a path
NETWORK = r"^[A-Za-z0-9_.:-][A-Za-z0-9 _.:/-]{0,127}$"


def read_vm(session: Any, params: Mapping[str, str]) -> Target:
    """The VM, found as for any operation; a resolver of its own, so that a read is not
    one of the actions a VM offers its viewer."""
    return find_vm(session, params)


# -- the read ---------------------------------------------------------------------------------
class DiskView(Result):
    device: str
    size: int = Field(description="bytes the guest sees")
    bus: str
    format: str
    volume: str = Field(description="the volume's name on the host")
    boot: bool


class CdromView(Result):
    device: str
    image: str | None


class NicView(Result):
    mac: str
    network: str
    model: str


class HardwareView(Result):
    firmware: Firmware
    boot_order: list[str]
    disks: list[DiskView]
    cdroms: list[CdromView]
    nics: list[NicView]


@operation("vm.hardware", "GET", f"{VM_PATH}/hardware", VmRef, HardwareView, role=Role.VIEWER,
           resolve=read_vm, target_name=VM_TARGET)
def hardware(context: Context, command: VmRef) -> HardwareView:
    """The VM's disks, CD drives, NICs, firmware and boot order, as its host has them."""
    found = service.vm_hardware(context.settings, command.name, command.host)
    return HardwareView.model_validate(found, from_attributes=True)


# -- changes ----------------------------------------------------------------------------------
class Changed(Result):
    device: str = Field(description="the disk, the CD drive, or the NIC's MAC")
    applies: str = Field(description="now, or at the next boot")


def changed(done: HardwareChange) -> Changed:
    return Changed(device=done.device, applies="now" if done.live else "at the next boot")


class NewDisk(VmRef):
    size_gib: int = Field(ge=1, le=HardwareLimits.DISK_GIB)
    bus: DiskBus = DiskBus.VIRTIO


@operation("vm.disk.add", "POST", f"{VM_PATH}/disks", NewDisk, Changed, resolve=find_vm,
           target_name=VM_TARGET)
def add_disk(context: Context, command: NewDisk) -> Changed:
    """Add an empty disk of `size_gib` GiB on `bus` (hot-plugged into a running VM on virtio
    and SCSI; a SATA disk from the next boot)."""
    with refreshed(context, command.host):
        return changed(service.add_disk(context.settings, command.name, command.host,
                                        command.size_gib, command.bus))


class DiskRef(VmRef):
    device: str = Field(pattern=DEVICE)


class DiskSize(DiskRef):
    size_gib: int = Field(ge=1, le=HardwareLimits.DISK_GIB)


@operation("vm.disk.resize", "PATCH", f"{VM_PATH}/disks/{{device}}", DiskSize, Changed,
           resolve=find_vm, target_name=VM_TARGET)
def resize_disk(context: Context, command: DiskSize) -> Changed:
    """Grow the disk to `size_gib` GiB (live on a running VM); a disk never shrinks (409)."""
    return changed(service.resize_disk(context.settings, command.name, command.host,
                                       command.device, command.size_gib))


@operation("vm.disk.remove", "DELETE", f"{VM_PATH}/disks/{{device}}", DiskRef, Changed,
           resolve=find_vm, target_name=VM_TARGET)
def remove_disk(context: Context, command: DiskRef) -> Changed:
    """Detach the disk and delete it: only one glasspane made for this VM, never the boot
    disk of a running VM (409)."""
    with refreshed(context, command.host):
        return changed(service.remove_disk(context.settings, command.name, command.host,
                                           command.device))


class NewNic(VmRef):
    network: str = Field(pattern=NETWORK)
    mac: str | None = Field(default=None, pattern=MAC, description="none: the host picks one")
    model: NicModel = NicModel.VIRTIO


def admit_nic(admission: Admission, command: NewNic) -> None:
    """A 404 now for a network the host does not have (as the inventory last saw it)."""
    with admission.database.session() as session:
        host = session.scalar(select(Host).where(Host.name == command.host))
        if host is not None:
            known_networks(host, [command.network])


@operation("vm.nic.add", "POST", f"{VM_PATH}/nics", NewNic, Changed, resolve=find_vm,
           target_name=VM_TARGET, admit=admit_nic)
def add_nic(context: Context, command: NewNic) -> Changed:
    """Add a NIC on one of the host's networks (hot-plugged into a running VM where the
    hypervisor allows); the answer's device is its MAC."""
    with refreshed(context, command.host):
        return changed(service.add_nic(context.settings, command.name, command.host,
                                       command.network, command.mac, command.model))


class NicRef(VmRef):
    mac: str = Field(pattern=MAC)


@operation("vm.nic.remove", "DELETE", f"{VM_PATH}/nics/{{mac}}", NicRef, Changed,
           resolve=find_vm, target_name=VM_TARGET)
def remove_nic(context: Context, command: NicRef) -> Changed:
    """Remove the NIC with this MAC."""
    with refreshed(context, command.host):
        return changed(service.remove_nic(context.settings, command.name, command.host,
                                          command.mac))


class Insert(VmRef):
    image: str = Field(pattern=IMAGE, description="an ISO in the server's image store")


@operation("vm.cdrom.insert", "POST", f"{VM_PATH}/cdrom", Insert, Changed, resolve=find_vm,
           target_name=VM_TARGET)
def insert_cdrom(context: Context, command: Insert) -> Changed:
    """Put an ISO of the image store in the VM's CD drive (replacing the one it holds)."""
    return changed(service.insert_cdrom(context.settings, command.name, command.host,
                                        command.image))


@operation("vm.cdrom.eject", "DELETE", f"{VM_PATH}/cdrom", VmRef, Changed, resolve=find_vm,
           target_name=VM_TARGET)
def eject_cdrom(context: Context, command: VmRef) -> Changed:
    """Empty the VM's CD drive."""
    return changed(service.eject_cdrom(context.settings, command.name, command.host))
