"""A libvirt VM's hardware: its disks, NICs and CD drive read from and changed in its
definition, and on the running VM too where libvirt can (attach/detach with LIVE|CONFIG,
blockResize, a CD's media changed); otherwise in the definition alone, for the next boot.

The persistent definition is the truth reported: a change made for the next boot shows at
once, as the VM will have it.  Functions of the driver's connection (`LibvirtDriver`), kept
apart from its module to keep each small.
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape

import libvirt

from glasspane.enums import DiskBus, Firmware, NicModel
from glasspane.errors import Conflict, HostError, NotFound, UsageError
from glasspane.hypervisors.base import (
    CdromInfo,
    DiskInfo,
    HardwareChange,
    MachineHardware,
    NicInfo,
)
from glasspane.hypervisors.domainxml import Controller, Disk, Domain, Nic, device_xml
from glasspane.hypervisors.libvirt_domain import SEED_TARGET

if TYPE_CHECKING:
    from glasspane.hypervisors.libvirt_driver import LibvirtDriver

CONFIG = libvirt.VIR_DOMAIN_AFFECT_CONFIG
LIVE = libvirt.VIR_DOMAIN_AFFECT_LIVE
# libvirt hot-plugs disks on these buses; a SATA disk waits for the next boot.
HOTPLUG_BUSES = frozenset({DiskBus.VIRTIO, DiskBus.SCSI})
# How long a guest has to release a device unplugged while it runs (it must agree).
UNPLUG_PATIENCE = 30.0


def _persistent(driver: LibvirtDriver, dom: Any) -> Domain:
    xml = driver._call(f"reading VM {dom.name()}", dom.XMLDesc,
                       libvirt.VIR_DOMAIN_XML_INACTIVE)
    return Domain.from_xml(xml)


def _live(driver: LibvirtDriver, dom: Any) -> Domain:
    return Domain.from_xml(driver._call(f"reading VM {dom.name()}", dom.XMLDesc, 0))


def _running(driver: LibvirtDriver, dom: Any) -> bool:
    return bool(driver._call(f"reading the state of VM {dom.name()}", dom.isActive))


def _boot_disk(model: Domain) -> Disk | None:
    """The disk the VM boots from: the first hard disk (libvirt's `hd` boot device)."""
    return next((d for d in model.disks if d.device == "disk"), None)


def _capacity(driver: LibvirtDriver, dom: Any, disk: Disk) -> int:
    if disk.path:
        with contextlib.suppress(libvirt.libvirtError):
            return int(driver._conn.storageVolLookupByPath(disk.path).info()[1])
    with contextlib.suppress(libvirt.libvirtError):
        return int(dom.blockInfo(disk.target)[0])
    return 0


def _volume_name(path: str | None) -> str:
    return os.path.basename(path) if path else ""


def hardware(driver: LibvirtDriver, name: str) -> MachineHardware:
    dom = driver._domain(name)
    model = _persistent(driver, dom)
    boot = _boot_disk(model)
    disks = [DiskInfo(d.target, _capacity(driver, dom, d), d.bus, d.format or "raw",
                      _volume_name(d.path), d is boot)
             for d in model.disks if d.device == "disk"]
    cdroms = [CdromInfo(d.target, _volume_name(d.path) or None)
              for d in model.disks if d.device == "cdrom"]
    nics = [NicInfo(n.mac or "", n.network or n.bridge or "", n.model or "")
            for n in model.nics]
    return MachineHardware(Firmware.UEFI if model.boot.uefi else Firmware.BIOS,
                           model.boot.devices or ["hd"], disks, cdroms, nics)


def _apply(driver: LibvirtDriver, dom: Any, call: str, xml: str, live: bool) -> None:
    """attach | detach | update the device, on the running VM too when `live`."""
    fn = {"attach": dom.attachDeviceFlags, "detach": dom.detachDeviceFlags,
          "update": dom.updateDeviceFlags}[call]
    driver._call(f"{call} of a device of VM {dom.name()}", fn, xml,
                 CONFIG | (LIVE if live else 0))


def _attach(driver: LibvirtDriver, dom: Any, xml: str, live: bool) -> bool:
    """Attach the device, hot-plugged when `live`; where the running VM refuses it (no free
    port, a guest that does not take it), into the definition only.  Whether it is live."""
    if live:
        try:
            _apply(driver, dom, "attach", xml, True)
            return True
        except HostError:
            pass
    _apply(driver, dom, "attach", xml, False)
    return False


def _scsi_controller(driver: LibvirtDriver, dom: Any, live: bool) -> None:
    """A virtio-scsi controller for a SCSI disk, where the VM has none (made elsewhere)."""
    if any(isinstance(d, Controller) and d.kind == "scsi"
           for d in _persistent(driver, dom).devices):
        return
    _apply(driver, dom, "attach", device_xml(Controller(kind="scsi", model="virtio-scsi")),
           live)


def add_disk(driver: LibvirtDriver, name: str, size: int, bus: DiskBus,
             storage: str | None) -> HardwareChange:
    if storage is None:
        raise UsageError("a libvirt host needs the storage to make the disk in")
    dom = driver._domain(name)
    model = _persistent(driver, dom)
    disk = model.add_disk(Disk(path=None, bus=str(bus), format="qcow2"))  # its free target
    pool = driver._pool(storage)
    volume = f"{name}-{disk.target}.qcow2"
    xml = (f"<volume><name>{escape(volume)}</name><capacity unit='bytes'>{size}</capacity>"
           f"<target><format type='qcow2'/></target></volume>")
    vol = driver._call(f"making disk {volume}", pool.createXML, xml, 0)
    try:
        disk.path = vol.path()
        running = _running(driver, dom)
        live = running and bus in HOTPLUG_BUSES
        if bus == DiskBus.SCSI:
            _scsi_controller(driver, dom, live)
        live = _attach(driver, dom, device_xml(disk), live)
    except BaseException:
        with contextlib.suppress(libvirt.libvirtError):
            vol.delete(0)
        raise
    return HardwareChange(disk.target, live or not running)


def resize_disk(driver: LibvirtDriver, name: str, device: str, size: int) -> HardwareChange:
    dom = driver._domain(name)
    disk = _disk(_persistent(driver, dom), device)
    now = _capacity(driver, dom, disk)
    if size < now:
        raise Conflict(f"disk {device} of VM {name} holds {now} bytes: a disk only grows",
                       hint=f"give a size of at least {now} bytes")
    if size == now:
        return HardwareChange(device, True)
    if _running(driver, dom):
        driver._call(f"growing disk {device} of VM {name}", dom.blockResize, device, size,
                     libvirt.VIR_DOMAIN_BLOCK_RESIZE_BYTES)
        return HardwareChange(device, True)
    if not disk.path:
        raise Conflict(f"disk {device} of VM {name} is not a file glasspane can grow")
    vol = driver._call(f"finding disk {device}", driver._conn.storageVolLookupByPath, disk.path)
    driver._call(f"growing disk {device} of VM {name}", vol.resize, size, 0)
    return HardwareChange(device, True)


def _disk(model: Domain, device: str) -> Disk:
    for disk in model.disks:
        if disk.target == device and disk.device == "disk":
            return disk
    raise NotFound(f"VM {model.name} has no disk {device}",
                   hint="its disks: " + (", ".join(d.target for d in model.disks
                                                   if d.device == "disk") or "none"))


def owners(driver: LibvirtDriver, name: str, path: str) -> list[str]:
    """What else than VM `name` uses the file at `path` (other VMs, volumes backed by it)."""
    return [u for u in driver.volume_users(path) if u != f"VM {name}"]


def own_volume(name: str, path: str | None) -> bool:
    """A volume glasspane made for VM `name` (its disk, its added disks, its ISO copy)."""
    volume = _volume_name(path)
    return volume == f"{name}.qcow2" or volume.startswith(f"{name}-")


def remove_disk(driver: LibvirtDriver, name: str, device: str) -> HardwareChange:
    dom = driver._domain(name)
    model = _persistent(driver, dom)
    disk = _disk(model, device)
    running = _running(driver, dom)
    if running and disk is _boot_disk(model):
        raise Conflict(f"disk {device} is the boot disk of VM {name}, which is running",
                       hint="shut the VM down first")
    if not disk.path or not own_volume(name, disk.path):
        raise Conflict(f"disk {device} of VM {name} is not a disk glasspane made for it",
                       hint="remove it with the hypervisor's own tools")
    others = owners(driver, name, disk.path)
    if others:
        raise Conflict(f"disk {device} of VM {name} is also used by {', '.join(others)}",
                       hint="remove those first")
    live = running and disk.bus in HOTPLUG_BUSES
    _apply(driver, dom, "detach", device_xml(disk), live)
    gone = not live or _unplugged(driver, dom, lambda m: any(d.target == device
                                                                for d in m.disks))
    vol = driver._call(f"finding disk {device}", driver._conn.storageVolLookupByPath, disk.path)
    driver._call(f"deleting disk {device} of VM {name}", vol.delete, 0)
    return HardwareChange(device, gone and (live or not running))


def _unplugged(driver: LibvirtDriver, dom: Any, present: Any) -> bool:
    """Whether the running guest released the device (the live domain no longer has it)
    within UNPLUG_PATIENCE seconds; libvirt's detach returns before it has."""
    deadline = time.monotonic() + UNPLUG_PATIENCE
    while present(_live(driver, dom)):
        if time.monotonic() > deadline or not _running(driver, dom):
            return not _running(driver, dom)
        time.sleep(0.5)
    return True


def networks(driver: LibvirtDriver) -> list[str]:
    return [n.name for n in driver.list_networks()]


def add_nic(driver: LibvirtDriver, name: str, network: str, mac: str | None,
            model: NicModel) -> HardwareChange:
    known = networks(driver)
    if network not in known:
        raise NotFound(f"host {driver.name} has no network {network!r}",
                       hint="its networks: " + (", ".join(known) or "none"))
    if mac is not None:
        _check_mac_free(driver, mac)
    dom = driver._domain(name)
    before = {(n.mac or "").lower() for n in _persistent(driver, dom).nics}
    nic = _persistent(driver, dom).add_nic(Nic(network=network, mac=mac, model=str(model)))
    running = _running(driver, dom)
    live = _attach(driver, dom, device_xml(nic), running)
    made = [n.mac or "" for n in _persistent(driver, dom).nics
            if (n.mac or "").lower() not in before]
    return HardwareChange(made[0] if made else mac or "", live or not running)


def _check_mac_free(driver: LibvirtDriver, mac: str) -> None:
    for other in driver._call("listing VMs", driver._conn.listAllDomains):
        with contextlib.suppress(libvirt.libvirtError):
            if any((n.mac or "").lower() == mac.lower()
                   for n in _persistent(driver, other).nics):
                raise Conflict(f"MAC {mac} is in use by VM {other.name()} on host "
                               f"{driver.name}", hint="give another MAC, or none")


def remove_nic(driver: LibvirtDriver, name: str, mac: str) -> HardwareChange:
    dom = driver._domain(name)
    nic = next((n for n in _persistent(driver, dom).nics
                if (n.mac or "").lower() == mac.lower()), None)
    if nic is None:
        raise NotFound(f"VM {name} has no NIC with MAC {mac}")
    running = _running(driver, dom)
    _apply(driver, dom, "detach", device_xml(nic), running)
    gone = not running or _unplugged(driver, dom, lambda m: any(
        (n.mac or "").lower() == mac.lower() for n in m.nics))
    return HardwareChange(nic.mac or mac, gone)


def _cd_drive(model: Domain) -> Disk | None:
    """The VM's CD drive for ISOs: the first one not holding its cloud-init seed."""
    return next((d for d in model.disks if d.device == "cdrom" and d.target != SEED_TARGET
                 and not _volume_name(d.path).endswith("-seed.iso")), None)


def insert_cdrom(driver: LibvirtDriver, name: str, image: str, volume: str,
                 storage: str | None) -> HardwareChange:
    if storage is None:
        raise UsageError("a libvirt host needs the storage to copy the ISO into")
    dom = driver._domain(name)
    if _cd_drive(_persistent(driver, dom)) is not None:
        eject_cdrom(driver, name, quiet=True)
    copy = driver.upload_volume(storage, f"{name}-{volume}", image, lambda n: None)
    try:
        model = _persistent(driver, dom)
        drive = _cd_drive(model)
        running = _running(driver, dom)
        if drive is None:  # a SATA drive of its own: plugged in at the next boot
            drive = model.add_disk(Disk(path=copy.path, bus="sata", format="raw",
                                        device="cdrom", readonly=True))
            _apply(driver, dom, "attach", device_xml(drive), False)
            return HardwareChange(drive.target, not running)
        drive.path, drive.format = copy.path, "raw"
        _apply(driver, dom, "update", device_xml(drive), running)
        return HardwareChange(drive.target, True)
    except BaseException:
        with contextlib.suppress(Exception):
            driver.delete_volume(storage, copy.name)
        raise


def eject_cdrom(driver: LibvirtDriver, name: str, quiet: bool = False) -> HardwareChange:
    dom = driver._domain(name)
    drive = _cd_drive(_persistent(driver, dom))
    if drive is None or not drive.path:
        if quiet and drive is not None:
            return HardwareChange(drive.target, True)
        raise Conflict(f"VM {name} has no ISO in a CD drive", hint="insert one first")
    held = drive.path
    drive.path = None
    _apply(driver, dom, "update", device_xml(drive), _running(driver, dom))
    if own_volume(name, held) and not owners(driver, name, held):
        with contextlib.suppress(libvirt.libvirtError):  # gone already: nothing to delete
            driver._conn.storageVolLookupByPath(held).delete(0)
    return HardwareChange(drive.target, True)
