"""A VM's hardware (disks, NICs, CD drive, firmware): read and changed through the host's
Hardware capability, with what the caller sends checked first (sizes, MACs, the ISO's name
in the store and its kind), so a refusal changes nothing on the host."""

from __future__ import annotations

import re
from pathlib import Path

from glasspane.enums import DiskBus, HardwareLimits, NicModel
from glasspane.errors import Conflict, NotFound, UsageError
from glasspane.hosts.service import host_driver
from glasspane.hypervisors.base import HardwareChange, MachineHardware
from glasspane.hypervisors.capabilities import (
    Capability,
    Driver,
    Hardware,
    require,
    supports,
)
from glasspane.settings import Settings

MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
ISO_MAGIC_OFFSET = 0x8001  # ISO 9660's first volume descriptor: "CD001"
HINT = "change it with the hypervisor's own tools"


def check_mac(mac: str) -> str:
    """`mac` in lower case when it is a unicast MAC written as six hexadecimal pairs."""
    if not MAC.match(mac):
        raise UsageError(f"{mac[:40]!r} is not a MAC address",
                         hint="write it as six hexadecimal pairs: 52:54:00:12:34:56")
    if int(mac[:2], 16) & 1:
        raise UsageError(f"MAC {mac} is a multicast address, which no NIC may have",
                         hint="give a unicast one (its first byte even), such as 52:54:00:...")
    return mac.lower()


def _storage(settings: Settings, driver: Driver) -> str | None:
    """Where new disks and ISO copies go: glasspane's VM storage on a libvirt host, made
    if missing; the host's default elsewhere (None)."""
    if supports(driver, Capability.PROVISIONING):
        provisioning = require(driver, Capability.PROVISIONING, "adding a disk")
        provisioning.ensure_storage(settings.vm_storage)
        return settings.vm_storage
    return None


def _hardware(driver: Driver, what: str) -> Hardware:
    return require(driver, Capability.HARDWARE, what, hint=HINT)


def vm_hardware(settings: Settings, name: str, host: str) -> MachineHardware:
    with host_driver(settings, host) as driver:
        return _hardware(driver, "reading a VM's hardware").vm_hardware(name)


def add_disk(settings: Settings, name: str, host: str, size_gib: int,
             bus: DiskBus) -> HardwareChange:
    with host_driver(settings, host) as driver:
        hardware = _hardware(driver, "adding a disk")
        if len(hardware.vm_hardware(name).disks) >= HardwareLimits.DISKS:
            raise Conflict(f"VM {name} has {HardwareLimits.DISKS} disks, as many as glasspane "
                           "gives a VM", hint="remove one first")
        return hardware.add_disk(name, size_gib << 30, bus, _storage(settings, driver))


def resize_disk(settings: Settings, name: str, host: str, device: str,
                size_gib: int) -> HardwareChange:
    with host_driver(settings, host) as driver:
        return _hardware(driver, "growing a disk").resize_disk(name, device, size_gib << 30)


def remove_disk(settings: Settings, name: str, host: str, device: str) -> HardwareChange:
    with host_driver(settings, host) as driver:
        return _hardware(driver, "removing a disk").remove_disk(name, device)


def add_nic(settings: Settings, name: str, host: str, network: str, mac: str | None,
            model: NicModel) -> HardwareChange:
    with host_driver(settings, host) as driver:
        hardware = _hardware(driver, "adding a NIC")
        if len(hardware.vm_hardware(name).nics) >= HardwareLimits.NICS:
            raise Conflict(f"VM {name} has {HardwareLimits.NICS} NICs, as many as glasspane "
                           "gives a VM", hint="remove one first")
        return hardware.add_nic(name, network, check_mac(mac) if mac else None, model)


def remove_nic(settings: Settings, name: str, host: str, mac: str) -> HardwareChange:
    with host_driver(settings, host) as driver:
        return _hardware(driver, "removing a NIC").remove_nic(name, check_mac(mac))


def iso_file(settings: Settings, image: str) -> Path:
    """The store's file of ISO `image` (a name, never a path: the store refuses one);
    UsageError when it is not an ISO 9660 image."""
    from glasspane.inventory.store import ImageStore
    path = ImageStore(settings.data_dir, settings.store_reserve).path(image)
    check_iso(path, image)
    return path


def store_local_iso(settings: Settings, path: Path) -> str:
    """The ISO file `path` of this machine put in this machine's image store (the CLI
    without --server takes a path); its name there."""
    import getpass
    import shutil

    from glasspane.inventory.store import Actor, ImageStore
    if not path.is_file():
        raise NotFound(f"no file {path}", hint="give an ISO file, or an image store's name")
    check_iso(path, path.name)
    store = ImageStore(settings.data_dir, settings.store_reserve)
    store.check_room(path.stat().st_size)
    with store.staging() as work:
        shutil.copyfile(path, work / path.name)
        store.adopt(work / path.name, path.name, Actor(getpass.getuser(), admin=True),
                    replace=True)
    return path.name


def check_iso(path: Path, image: str) -> None:
    with path.open("rb") as f:
        f.seek(ISO_MAGIC_OFFSET)
        if f.read(5) != b"CD001":
            raise UsageError(f"image {image} is not an ISO 9660 image (a CD's)",
                             hint="store the ISO first: `glasspane image put FILE`")


def insert_cdrom(settings: Settings, name: str, host: str, image: str) -> HardwareChange:
    path = iso_file(settings, image)
    with host_driver(settings, host) as driver:
        return _hardware(driver, "inserting a CD").insert_cdrom(
            name, str(path), image if image.endswith(".iso") else f"{image}.iso",
            _storage(settings, driver))


def eject_cdrom(settings: Settings, name: str, host: str) -> HardwareChange:
    with host_driver(settings, host) as driver:
        return _hardware(driver, "ejecting a CD").eject_cdrom(name)


def known_networks(settings: Settings, host: str) -> list[str]:
    """The host's networks by name (and, where it has them, by bridge: XenServer's)."""
    with host_driver(settings, host) as driver:
        found = driver.list_networks()
        return [n.name for n in found] + [n.bridge for n in found if n.bridge]


def check_networks(settings: Settings, host: str, wanted: list[str]) -> None:
    """NotFound for a network the host does not have (before anything is made)."""
    if not wanted:
        return
    known = known_networks(settings, host)
    for network in wanted:
        if network not in known:
            raise NotFound(f"host {host} has no network {network!r}",
                           hint="its networks: " + (", ".join(known) or "none"))
