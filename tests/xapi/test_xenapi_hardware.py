"""A XenServer VM's hardware through the XenAPI driver, against the loopback XAPI: disks made
as VDIs and attached by VBDs (plugged into a running VM), grown offline or online and never
shrunk, removed only when no other VM has them; NICs as VIFs; an ISO uploaded as a VDI and
inserted into a CD drive, ejected and deleted; the firmware read from HVM_boot_params; and a
destroyed VM takes its own disks and ISO copies, never a disk another VM shares."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from glasspane.enums import DiskBus, Firmware, NicModel
from glasspane.errors import Conflict, NotFound
from glasspane.guests.cloudinit import Seed, write_seed_iso
from glasspane.hypervisors.xenapi_driver import XenApiDriver
from glasspane.settings import Settings
from tests.xapi.server import NULL, Running

GIB = 1 << 30


@pytest.fixture
def driver(settings: Settings, xapi: Running) -> Iterator[XenApiDriver]:
    connected = XenApiDriver("xcp", xapi.url, "root", "s3cret-pool")
    yield connected
    connected.close()


def vm_ref(xapi: Running, name: str) -> str:
    return next(r for r, v in xapi.xapi.objects["VM"].items() if v["name_label"] == name)


def test_disks_on_a_halted_then_running_vm(driver: XenApiDriver, xapi: Running) -> None:
    made = driver.add_disk("db-1", GIB, DiskBus.VIRTIO, None)
    assert (made.device, made.live) == ("0", True)
    disk = driver.vm_hardware("db-1").disks
    assert [(d.device, d.size, d.boot) for d in disk] == [("0", GIB, True)]
    assert driver.resize_disk("db-1", "0", 2 * GIB).live
    with pytest.raises(Conflict, match="only grows"):
        driver.resize_disk("db-1", "0", GIB)
    with pytest.raises(NotFound, match="no disk 7"):
        driver.resize_disk("db-1", "7", GIB)

    driver.vm_action("db-1", "start")
    data = driver.add_disk("db-1", GIB, DiskBus.SCSI, "Local storage")
    assert (data.device, data.live) == ("1", True)   # plugged into the running VM
    vbds = {v["userdevice"]: v for v in xapi.xapi.objects["VBD"].values()
            if v["VM"] == vm_ref(xapi, "db-1")}
    assert vbds["1"]["currently_attached"]
    # Attached: XAPI refuses an offline resize (VDI_IN_USE); the driver resizes online.
    assert driver.resize_disk("db-1", "1", 3 * GIB).live
    assert xapi.xapi.objects["VDI"][vbds["1"]["VDI"]]["virtual_size"] == 3 * GIB
    with pytest.raises(Conflict, match="boot disk of VM db-1, which is running"):
        driver.remove_disk("db-1", "0")
    assert driver.remove_disk("db-1", "1").live
    assert vbds["1"]["VDI"] not in xapi.xapi.objects["VDI"]
    assert [d.device for d in driver.vm_hardware("db-1").disks] == ["0"]


def test_a_disk_another_vm_shares_is_never_removed(driver: XenApiDriver,
                                                   xapi: Running) -> None:
    driver.add_disk("db-1", GIB, DiskBus.VIRTIO, None)
    [vdi] = [v["VDI"] for v in xapi.xapi.objects["VBD"].values()
             if v["VM"] == vm_ref(xapi, "db-1")]
    web = vm_ref(xapi, "web-1")
    xapi.xapi.objects["VM"][web]["VBDs"].append(xapi.xapi.add(
        "VBD", VM=web, VDI=vdi, type="Disk", userdevice="3", mode="RW"))
    with pytest.raises(Conflict, match="also used by VM web-1"):
        driver.remove_disk("db-1", "0")
    driver.destroy_vm("db-1")
    assert vdi in xapi.xapi.objects["VDI"]  # web-1 still has it


def test_nics(driver: XenApiDriver, xapi: Running) -> None:
    driver.vm_action("db-1", "start")
    made = driver.add_nic("db-1", "Pool-wide network", "52:54:00:00:0a:01", NicModel.VIRTIO)
    assert (made.device, made.live) == ("52:54:00:00:0a:01", True)
    other = driver.add_nic("db-1", "xapi1", None, NicModel.E1000)  # by bridge; XAPI's MAC
    assert other.device and other.device != made.device
    with pytest.raises(Conflict, match="in use"):
        driver.add_nic("web-1", "xenbr0", "52:54:00:00:0a:01", NicModel.VIRTIO)
    with pytest.raises(NotFound, match="no network 'dmz'"):
        driver.add_nic("db-1", "dmz", None, NicModel.VIRTIO)
    assert [(n.mac, n.network) for n in driver.vm_hardware("db-1").nics] == [
        ("52:54:00:00:0a:01", "Pool-wide network"), (other.device, "lab-vlan-20")]
    assert driver.remove_nic("db-1", "52:54:00:00:0a:01").live  # unplugged, then destroyed
    assert len(driver.vm_hardware("db-1").nics) == 1
    with pytest.raises(NotFound):
        driver.remove_nic("db-1", "52:54:00:00:0a:01")


def test_an_iso_in_the_cd_drive(driver: XenApiDriver, xapi: Running, tmp_path: Path) -> None:
    iso = tmp_path / "tools.iso"
    write_seed_iso(Seed("i-1", "cd"), iso)
    driver.vm_action("db-1", "start")
    done = driver.insert_cdrom("db-1", str(iso), "tools.iso", None)
    assert done.live
    [cd] = driver.vm_hardware("db-1").cdroms
    assert (cd.device, cd.image) == (done.device, "tools.iso")
    [vdi] = [r for r, v in xapi.xapi.objects["VDI"].items() if v["name_label"] == "tools.iso"]
    assert xapi.xapi.disks[vdi] == iso.read_bytes()
    # Another ISO in its place: the first is ejected, and its copy deleted.
    driver.insert_cdrom("db-1", str(iso), "tools-2.iso", None)
    assert vdi not in xapi.xapi.objects["VDI"]
    driver.eject_cdrom("db-1")
    assert driver.vm_hardware("db-1").cdroms[0].image is None
    assert not [v for v in xapi.xapi.objects["VDI"].values() if "tools" in v["name_label"]]
    with pytest.raises(Conflict, match="no ISO"):
        driver.eject_cdrom("db-1")
    driver.insert_cdrom("db-1", str(iso), "tools.iso", None)
    driver.vm_action("db-1", "poweroff")
    driver.destroy_vm("db-1")  # its ISO copy goes with it
    assert not [v for v in xapi.xapi.objects["VDI"].values() if "tools" in v["name_label"]]
    assert all(v["VDI"] == NULL or v["VDI"] in xapi.xapi.objects["VDI"]
               for v in xapi.xapi.objects["VBD"].values())


def test_firmware_and_boot_order(driver: XenApiDriver, xapi: Running) -> None:
    assert driver.vm_hardware("db-1").firmware == Firmware.BIOS
    xapi.xapi.objects["VM"][vm_ref(xapi, "db-1")]["HVM_boot_params"] = {
        "firmware": "uefi", "order": "dc"}
    found = driver.vm_hardware("db-1")
    assert (found.firmware, found.boot_order) == (Firmware.UEFI, ["cdrom", "hd"])


def test_a_whole_machine_created_from_a_pools_template(
        capsys: pytest.CaptureFixture[str], settings: Settings, xapi: Running,
        password_file: Path) -> None:
    from tests.cli.runner import run_cli
    from tests.xapi.test_xenapi_driver import add_pool
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    r = run_cli(capsys, "vm", "create", "web-9", "--template", "debian-12", "--host", "xcp",
                "--disk", "20", "--disk", "5", "--nic", "Pool-wide network",
                "--nic", "lab-vlan-20:52:54:00:aa:00:09", "--firmware", "uefi", "--no-wait")
    assert r.code == 0, r.err
    vm = pool.objects["VM"][vm_ref(xapi, "web-9")]
    assert vm["HVM_boot_params"]["firmware"] == "uefi" and vm["power_state"] == "Running"
    networks = {r: v["name_label"] for r, v in pool.objects["network"].items()}
    assert [(networks[pool.objects["VIF"][v]["network"]], pool.objects["VIF"][v]["MAC"])
            for v in vm["VIFs"]][1] == ("lab-vlan-20", "52:54:00:aa:00:09")
    sizes = [pool.objects["VDI"][pool.objects["VBD"][b]["VDI"]]["virtual_size"]
             for b in vm["VBDs"] if pool.objects["VBD"][b]["type"] == "Disk"]
    assert sizes[:2] == [20 * GIB, 5 * GIB]  # the template's disk grown, then the data disk
    r = run_cli(capsys, "vm", "hardware", "web-9", "--host", "xcp")
    assert r.code == 0 and "firmware  uefi" in r.out, r.err
    vdis = {pool.objects["VBD"][b]["VDI"] for b in vm["VBDs"]}
    assert run_cli(capsys, "vm", "destroy", "web-9", "--host", "xcp").code == 0
    assert not vdis & set(pool.objects["VDI"])
    r = run_cli(capsys, "vm", "create", "web-8", "--template", "debian-12", "--host", "xcp",
                "--nic", "dmz", "--no-wait")
    assert r.code == 6 and "no network 'dmz'" in r.err
    assert not [v for v in pool.objects["VM"].values() if v["name_label"] == "web-8"]
