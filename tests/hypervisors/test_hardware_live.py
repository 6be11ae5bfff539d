"""Whole machines on a real libvirtd, real guests under TCG: a VM made with two disks and two
NICs; a disk hot-plugged into it and seen by the guest, then grown while it runs; a NIC
unplugged; an ISO put in its CD drive; its boot disk kept while it runs; destroyed with every
disk it owns.  And a UEFI VM (OVMF, its own NVRAM) boots to SSH."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import libvirt
import pytest

from glasspane.enums import DiskBus, Firmware
from glasspane.errors import Conflict
from glasspane.settings import Settings
from glasspane.vms import hardware
from glasspane.vms.service import VmRequest, create_vm, destroy_vm
from tests.hypervisors.conftest import URI, guest_world
from tests.hypervisors.test_vms import ssh

pytestmark = pytest.mark.integration

VMS = ("hw-1", "hw-uefi")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    with guest_world(tmp_path_factory.mktemp("hw"), "gp-hw", VMS) as settings:
        yield settings


@pytest.fixture(scope="module")
def key(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("key") / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                   check=True)
    return path


def until(what: str, probe: Callable[[], bool], timeout: float = 60) -> None:
    from glasspane.guests.readiness import wait_for
    wait_for(what, lambda: "yes" if probe() else None, timeout, "test", interval=1)


def volumes(settings: Settings) -> set[str]:
    conn = libvirt.open(URI)
    try:
        pool = conn.storagePoolLookupByName(settings.vm_storage)
        pool.refresh(0)
        return {v.name() for v in pool.listAllVolumes()}
    finally:
        conn.close()


def test_a_machine_with_disks_and_nics_changed_while_it_runs(world: Settings,
                                                             key: Path) -> None:
    # A MAC of this run's: the network's DHCP server keeps an old run's lease for an hour.
    mac = "52:54:00:" + ":".join(f"{b:02x}" for b in os.urandom(3))
    request = VmRequest("hw-1", "deb", ssh_keys=[Path(f"{key}.pub").read_text()],
                        disks=[(1, DiskBus.VIRTIO), (2, DiskBus.SCSI)],
                        nics=[("default", mac), ("default", None)])
    made = create_vm(world, request)
    address = made.addresses[0]
    run = lambda command: ssh(key, address, command)  # noqa: E731
    found = hardware.vm_hardware(world, "hw-1", "local")
    assert [(d.device, d.bus, d.size >> 30, d.boot) for d in found.disks] == \
        [("vda", "virtio", found.disks[0].size >> 30, True), ("vdb", "virtio", 1, False),
         ("sdc", "scsi", 2, False)]
    assert found.nics[0].mac == mac and len(found.nics) == 2
    sizes = run("lsblk -dbno NAME,SIZE")
    assert "vdb 1073741824" in " ".join(sizes.split()) and "2147483648" in sizes

    # Hot-plugged: the guest sees it without a reboot; then grown under it.
    added = hardware.add_disk(world, "hw-1", "local", 1, DiskBus.VIRTIO)
    assert (added.device, added.live) == ("vdc", True)
    until("vdc in the guest", lambda: "vdc" in run("lsblk -dno NAME"))
    grown = hardware.resize_disk(world, "hw-1", "local", "vdc", 3)
    assert grown.live
    until("vdc grown in the guest",
          lambda: run("lsblk -dbno SIZE /dev/vdc").strip() == str(3 << 30))
    with pytest.raises(Conflict, match="only grows"):
        hardware.resize_disk(world, "hw-1", "local", "vdc", 1)

    # A NIC unplugged from the running guest.
    links = lambda: len(run("ls /sys/class/net").split())  # noqa: E731
    before = links()
    # The guest configures one NIC (cloud-init's fallback): the other one goes.
    used = run(f"cat /sys/class/net/$(ip -o -4 addr show to {address} | cut -d' ' -f2)"
               "/address").strip()
    [other] = [n.mac for n in hardware.vm_hardware(world, "hw-1", "local").nics
               if n.mac != used]
    assert hardware.remove_nic(world, "hw-1", "local", other).live
    until("the NIC gone from the guest", lambda: links() == before - 1)

    # An ISO of the store in its CD drive, seen as a medium by the guest.
    from glasspane.guests.cloudinit import Seed, write_seed_iso
    store = world.data_dir / "images"
    store.mkdir(parents=True, exist_ok=True)
    write_seed_iso(Seed("i-cd", "cd"), store / "tools.iso")
    assert hardware.insert_cdrom(world, "hw-1", "local", "tools.iso").live
    until("the ISO in the guest",
          lambda: "iso9660" in run("sudo blkid -p -o value -s TYPE /dev/sr1 || true"))

    with pytest.raises(Conflict, match="boot disk"):
        hardware.remove_disk(world, "hw-1", "local", "vda")
    assert hardware.remove_disk(world, "hw-1", "local", "vdc").live
    until("vdc gone from the guest", lambda: "vdc" not in run("lsblk -dno NAME"))

    destroy_vm(world, "hw-1")
    assert not any(v.startswith("hw-1") for v in volumes(world))


def test_a_uefi_vm_boots_to_ssh(world: Settings, key: Path) -> None:
    request = VmRequest("hw-uefi", "deb", ssh_keys=[Path(f"{key}.pub").read_text()],
                        firmware=Firmware.UEFI)
    made = create_vm(world, request, timeout=600)
    assert ssh(key, made.addresses[0], "test -d /sys/firmware/efi && echo efi").strip() == "efi"
    assert hardware.vm_hardware(world, "hw-uefi", "local").firmware == Firmware.UEFI
    assert "hw-uefi-nvram.fd" in volumes(world)  # its own, beside its disks
    destroy_vm(world, "hw-uefi")
    assert not any(v.startswith("hw-uefi") for v in volumes(world))
