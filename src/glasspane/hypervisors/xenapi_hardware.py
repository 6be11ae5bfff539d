"""A XenServer VM's hardware through XAPI: disks are VDIs attached by VBDs, the CD drive a
VBD of type CD whose media is inserted and ejected, NICs VIFs, the firmware
HVM_boot_params:firmware.  A running VM gets a device plugged (VBD.plug, VIF.plug: its PV
drivers must agree) or unplugged; where XAPI refuses, the change waits for the next boot.

Disks and ISO copies glasspane makes carry the VM's UUID in their other_config
(OWNER_KEY): only those are ever destroyed with a disk's removal or an eject.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any

from glasspane.enums import DiskBus, Firmware, NicModel
from glasspane.errors import Conflict, HostError, NotFound
from glasspane.hypervisors.base import (
    CdromInfo,
    DiskInfo,
    HardwareChange,
    MachineHardware,
    NicInfo,
)

if TYPE_CHECKING:
    from glasspane.hypervisors.xenapi_driver import XenApiDriver

NULL = "OpaqueRef:NULL"
OWNER_KEY = "glasspane-vm"          # a VDI's other_config: the UUID of the VM it was made for
BOOT_ORDER = {"c": "hd", "d": "cdrom", "n": "network"}


def _running(record: dict[str, Any]) -> bool:
    return str(record["power_state"]) == "Running"


def _vbds(driver: XenApiDriver, record: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(vbd, driver._call("reading a disk", "VBD.get_record", vbd))
            for vbd in record["VBDs"]]


def _boot_device(vbds: list[tuple[str, dict[str, Any]]]) -> str | None:
    """The disk it boots from: the bootable one, else the lowest device number."""
    disks = [r for _, r in vbds if r["type"] == "Disk"]
    bootable = [r for r in disks if r["bootable"]] or \
        sorted(disks, key=lambda r: int(r["userdevice"]) if r["userdevice"].isdigit() else 99)
    return str(bootable[0]["userdevice"]) if bootable else None


def hardware(driver: XenApiDriver, name: str) -> MachineHardware:
    _, record = driver._vm(name)
    vbds = _vbds(driver, record)
    boot = _boot_device(vbds)
    disks, cdroms = [], []
    for _, vbd in sorted(vbds, key=lambda v: str(v[1]["userdevice"])):
        vdi = None if vbd["VDI"] == NULL else \
            driver._call("reading a disk", "VDI.get_record", vbd["VDI"])
        if vbd["type"] == "CD":
            cdroms.append(CdromInfo(str(vbd["userdevice"]),
                                    str(vdi["name_label"]) if vdi else None))
        elif vdi is not None:
            disks.append(DiskInfo(str(vbd["userdevice"]), int(vdi["virtual_size"]), "xen",
                                  "vhd", str(vdi["name_label"]), vbd["userdevice"] == boot))
    nics = []
    for vif in record["VIFs"]:
        found = driver._call("reading a NIC", "VIF.get_record", vif)
        network = driver._call("reading a network", "network.get_name_label",
                               found["network"])
        nics.append(NicInfo(str(found["MAC"]), str(network), "netfront"))
    params = record.get("HVM_boot_params") or {}
    order = [BOOT_ORDER[c] for c in str(params.get("order", "cd")) if c in BOOT_ORDER]
    return MachineHardware(Firmware.UEFI if params.get("firmware") == "uefi" else Firmware.BIOS,
                           order, disks, cdroms, nics)


def _plug(driver: XenApiDriver, kind: str, ref: str, what: str) -> bool:
    """Hot-plug the new device into the running VM; False (it is there from the next boot)
    when XAPI refuses, as it does for a guest without PV drivers."""
    try:
        driver._call(what, f"{kind}.plug", ref)
    except HostError:
        return False
    return True


def _unplug(driver: XenApiDriver, kind: str, ref: str, vm: str, what: str) -> None:
    """Take `what` (a disk, a NIC) out of the running VM; a Conflict when the guest keeps it."""
    try:
        driver._call(f"unplugging {what} of VM {vm}", f"{kind}.unplug", ref)
    except HostError as exc:
        raise Conflict(f"VM {vm} did not release {what}: {exc.detail}",
                       hint="shut the VM down, then remove it") from exc


def add_disk(driver: XenApiDriver, name: str, size: int, bus: DiskBus,
             storage: str | None) -> HardwareChange:
    del bus  # XenServer gives every disk the same (emulated, then PV) device
    ref, record = driver._vm(name)
    vdi = driver._call("making a disk", "VDI.create", {
        "name_label": f"{name} data", "name_description": "made by glasspane",
        "SR": driver._sr(storage), "virtual_size": str(size), "type": "user",
        "sharable": False, "read_only": False, "other_config": {OWNER_KEY: record["uuid"]}})
    try:
        vbd = driver._call(f"attaching a disk to VM {name}", "VBD.create", {
            "VM": ref, "VDI": vdi, "userdevice": "autodetect", "bootable": False,
            "mode": "RW", "type": "Disk", "empty": False, "unpluggable": True,
            "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
    except BaseException:
        with contextlib.suppress(Exception):
            driver._call("removing the new disk", "VDI.destroy", vdi)
        raise
    device = str(driver._call("reading the new disk", "VBD.get_userdevice", vbd))
    live = not _running(record) or _plug(driver, "VBD", vbd, f"plugging a disk into {name}")
    return HardwareChange(device, live)


def _disk(driver: XenApiDriver, name: str, record: dict[str, Any], device: str
          ) -> tuple[str, dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    vbds = _vbds(driver, record)
    for vbd, found in vbds:
        if found["type"] == "Disk" and found["userdevice"] == device and found["VDI"] != NULL:
            return vbd, found, vbds
    raise NotFound(f"VM {name} has no disk {device}",
                   hint="its disks: " + (", ".join(str(r["userdevice"]) for _, r in vbds
                                                   if r["type"] == "Disk") or "none"))


def resize_disk(driver: XenApiDriver, name: str, device: str, size: int) -> HardwareChange:
    _, record = driver._vm(name)
    _, vbd, _ = _disk(driver, name, record, device)
    now = int(driver._call("reading a disk's size", "VDI.get_virtual_size", vbd["VDI"]))
    if size < now:
        raise Conflict(f"disk {device} of VM {name} holds {now} bytes: a disk only grows",
                       hint=f"give a size of at least {now} bytes")
    if size > now:
        method = "VDI.resize_online" if vbd["currently_attached"] else "VDI.resize"
        driver._call(f"growing disk {device} of VM {name}", method, vbd["VDI"], str(size))
    return HardwareChange(device, True)


def other_users(driver: XenApiDriver, vm: str, vdi: str) -> list[str]:
    """The VMs and templates other than `vm` with a VBD on `vdi`."""
    users = []
    for vbd in driver._call("reading a disk's users", "VDI.get_VBDs", vdi):
        owner = driver._call("reading a disk's user", "VBD.get_VM", vbd)
        if owner != vm:
            label = driver._call("reading a VM", "VM.get_name_label", owner)
            users.append(f"VM {label}")
    return users


def remove_disk(driver: XenApiDriver, name: str, device: str) -> HardwareChange:
    ref, record = driver._vm(name)
    vbd_ref, vbd, vbds = _disk(driver, name, record, device)
    running = _running(record)
    if running and device == _boot_device(vbds):
        raise Conflict(f"disk {device} is the boot disk of VM {name}, which is running",
                       hint="shut the VM down first")
    others = other_users(driver, ref, vbd["VDI"])
    if others:
        raise Conflict(f"disk {device} of VM {name} is also used by {', '.join(others)}",
                       hint="remove those first")
    live = True
    if vbd["currently_attached"]:
        _unplug(driver, "VBD", vbd_ref, name, f"disk {device}")
    driver._call(f"detaching disk {device} of VM {name}", "VBD.destroy", vbd_ref)
    driver._call(f"deleting disk {device} of VM {name}", "VDI.destroy", vbd["VDI"])
    return HardwareChange(device, live)


def _network(driver: XenApiDriver, network: str) -> str:
    records = driver._call("listing networks", "network.get_all_records")
    found = [ref for ref, r in records.items()
             if network in (r["name_label"], r["bridge"], r["uuid"])]
    if not found:
        names = ", ".join(sorted(r["name_label"] for r in records.values()))
        raise NotFound(f"host {driver.name} has no network {network!r}",
                       hint=f"its networks: {names}")
    return str(found[0])


def add_nic(driver: XenApiDriver, name: str, network: str, mac: str | None,
            model: NicModel) -> HardwareChange:
    del model  # XenServer's NICs are its own (emulated, then netfront)
    ref, record = driver._vm(name)
    net = _network(driver, network)
    vifs = driver._call("listing NICs", "VIF.get_all_records")
    if mac and any(str(v["MAC"]).lower() == mac for v in vifs.values()):
        raise Conflict(f"MAC {mac} is in use on host {driver.name}",
                       hint="give another MAC, or none")
    used = {str(vifs[v]["device"]) for v in record["VIFs"] if v in vifs}
    vif = driver._call(f"adding a NIC to VM {name}", "VIF.create", {
        "device": next(str(n) for n in range(64) if str(n) not in used), "network": net,
        "VM": ref, "MAC": mac or "", "MTU": "1500", "other_config": {},
        "qos_algorithm_type": "", "qos_algorithm_params": {}})
    made = str(driver._call("reading the new NIC", "VIF.get_MAC", vif))
    live = not _running(record) or _plug(driver, "VIF", vif, f"plugging a NIC into {name}")
    return HardwareChange(made, live)


def remove_nic(driver: XenApiDriver, name: str, mac: str) -> HardwareChange:
    _, record = driver._vm(name)
    for vif in record["VIFs"]:
        found = driver._call("reading a NIC", "VIF.get_record", vif)
        if str(found["MAC"]).lower() != mac:
            continue
        if found["currently_attached"]:
            _unplug(driver, "VIF", vif, name, f"NIC {mac}")
        driver._call(f"removing NIC {mac} of VM {name}", "VIF.destroy", vif)
        return HardwareChange(mac, True)
    raise NotFound(f"VM {name} has no NIC with MAC {mac}")


def _cd(driver: XenApiDriver, record: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    return next(((v, r) for v, r in _vbds(driver, record) if r["type"] == "CD"), None)


def insert_cdrom(driver: XenApiDriver, name: str, image: str, volume: str,
                 storage: str | None) -> HardwareChange:
    ref, record = driver._vm(name)
    if (held := _cd(driver, record)) is not None and not held[1]["empty"]:
        eject_cdrom(driver, name)
    size = os.path.getsize(image)
    vdi = driver._call("making the ISO's disk", "VDI.create", {
        "name_label": volume, "name_description": "an ISO glasspane put in a CD drive",
        "SR": driver._sr(storage), "virtual_size": str(size), "type": "user",
        "sharable": False, "read_only": False, "other_config": {OWNER_KEY: record["uuid"]}})
    try:
        driver.upload_raw(vdi, image, size, f"uploading {volume} for VM {name}")
        drive = _cd(driver, driver._vm(name)[1])
        live = True
        if drive is None:  # a CD drive of its own, empty, then the media put in
            made = driver._call(f"adding a CD drive to VM {name}", "VBD.create", {
                "VM": ref, "VDI": NULL, "userdevice": "autodetect", "bootable": False,
                "mode": "RO", "type": "CD", "empty": True, "unpluggable": True,
                "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})
            live = not _running(record) or _plug(driver, "VBD", made,
                                                 f"plugging a CD drive into {name}")
            drive = (made, driver._call("reading the CD drive", "VBD.get_record", made))
        driver._call(f"inserting {volume} in VM {name}'s CD drive", "VBD.insert", drive[0],
                     vdi)
    except BaseException:
        with contextlib.suppress(Exception):
            driver._call("removing the ISO's disk", "VDI.destroy", vdi)
        raise
    return HardwareChange(str(drive[1]["userdevice"]), live)


def eject_cdrom(driver: XenApiDriver, name: str) -> HardwareChange:
    _, record = driver._vm(name)
    drive = _cd(driver, record)
    if drive is None or drive[1]["empty"]:
        raise Conflict(f"VM {name} has no ISO in a CD drive", hint="insert one first")
    vbd, found = drive
    driver._call(f"ejecting VM {name}'s CD", "VBD.eject", vbd)
    owner = driver._call("reading the ISO's disk", "VDI.get_other_config", found["VDI"])
    if owner.get(OWNER_KEY) == record["uuid"]:  # glasspane's copy, for this VM: deleted
        with contextlib.suppress(HostError, NotFound):
            driver._call("deleting the ISO's copy", "VDI.destroy", found["VDI"])
    return HardwareChange(str(found["userdevice"]), True)
