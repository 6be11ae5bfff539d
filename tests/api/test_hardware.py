"""A VM's hardware through the served API, on a real (defined, halted) libvirt domain in a
storage pool of the test's own: read by a viewer, changed by an operator only; a disk added,
grown (never shrunk), removed (only the VM's own); a NIC added and removed; an ISO of the
store put in the CD drive and ejected; bad input refused before the host is touched; one
change from the CLI through --server; and `vm destroy` removes the VM's own disks, never a
volume something else uses."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from glasspane.api.app import create_app
from glasspane.enums import Firmware
from glasspane.guests.cloudinit import Seed, write_seed_iso
from glasspane.hypervisors.base import VmSpec
from glasspane.hypervisors.libvirt_domain import domain_xml
from glasspane.hypervisors.libvirt_driver import LibvirtDriver
from glasspane.inventory.db import Database
from glasspane.inventory.models import Host, Task, Template
from glasspane.settings import Settings
from tests.api.conftest import PASSWORDS, login, serve
from tests.api.test_api import add_vm
from tests.cli.runner import run_cli
from tests.hypervisors.conftest import URI, remove_pool

API = "/api/v1"


@pytest.fixture(autouse=True)
def pool_name(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The VM storage of the test's own (set before the settings are loaded)."""
    name = f"gp-hw-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("GLASSPANE_VM_STORAGE", name)
    yield name
    conn = libvirt.open(URI)
    remove_pool(conn, name)
    conn.close()


def define(driver: LibvirtDriver, pool: str, name: str, disk_volume: str,
           firmware: Firmware = Firmware.BIOS) -> libvirt.virDomain:
    """A halted VM whose disk is volume `disk_volume` of `pool`."""
    info = driver.create_blank_disk(pool, disk_volume, 64 << 20)
    nvram = str(Path(info.path).with_name(f"{name}-nvram.fd"))
    spec = VmSpec(name, 1, 128, info.path, None, None, None, None, firmware=firmware,
                  nvram=nvram if firmware == Firmware.UEFI else None)
    return driver._conn.defineXML(domain_xml(spec, "tcg"))


@pytest.fixture
def vm(settings: Settings, pool_name: str) -> Iterator[str]:
    driver = LibvirtDriver("local", URI)
    driver.ensure_storage(pool_name)
    name = f"gp-hw-{uuid.uuid4().hex[:6]}"
    # Its disk is not one glasspane made for it (another name): never removed.
    dom = define(driver, pool_name, name, f"base-{name}.qcow2", Firmware.UEFI)
    yield name
    try:
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
    except libvirt.libvirtError:
        pass
    driver.close()


def volumes(pool: str) -> set[str]:
    conn = libvirt.open(URI)
    try:
        found = conn.storagePoolLookupByName(pool)
        found.refresh(0)
        return {v.name() for v in found.listAllVolumes()}
    finally:
        conn.close()


def test_hardware_requests_are_checked_before_the_host_is_touched(
        client: TestClient, database: Database) -> None:
    add_vm(database, "web-1", "running")
    with database.session() as session:
        session.scalar(select(Host).where(Host.name == "local")).info = {
            "networks": ["default"]}
    otto, vera = login(client, "otto"), login(client, "vera")
    base = f"{API}/vms/local/web-1"
    assert client.get(f"{API}/vms/local/ghost/hardware", headers=vera).status_code == 404
    assert client.post(f"{API}/vms/local/ghost/disks", headers=otto,
                       json={"size_gib": 1}).status_code == 404
    # A viewer reads, never changes.
    for method, path, body in (("POST", "/disks", {"size_gib": 1}),
                               ("PATCH", "/disks/vdb", {"size_gib": 2}),
                               ("DELETE", "/disks/vdb", None),
                               ("POST", "/nics", {"network": "default"}),
                               ("DELETE", "/nics/52:54:00:00:00:01", None),
                               ("POST", "/cdrom", {"image": "x.iso"}),
                               ("DELETE", "/cdrom", None)):
        answer = client.request(method, base + path, headers=vera, json=body)
        assert answer.status_code == 403, (path, answer.text)
    for body in ({"size_gib": 0}, {"size_gib": 65537}, {"size_gib": 1, "bus": "ide"},
                 {"size_gib": 1, "path": "/etc"}):
        assert client.post(f"{base}/disks", headers=otto, json=body).status_code == 422, body
    for body in ({"network": "default", "mac": "01:00:5e:00:00:01"},   # multicast
                 {"network": "default", "mac": "52:54:00:00:00"},
                 {"network": "default", "model": "ne2k"},
                 {"network": ""}, {"network": "a\nb"}):
        assert client.post(f"{base}/nics", headers=otto, json=body).status_code == 422, body
    for image in ("../../etc/passwd", "/srv/x.iso", ".hidden"):
        assert client.post(f"{base}/cdrom", headers=otto, json={"image": image}
                           ).status_code == 422, image
    assert client.patch(f"{base}/disks/VDA..", headers=otto, json={"size_gib": 2}
                        ).status_code == 422
    missing = client.post(f"{base}/nics", headers=otto, json={"network": "dmz"})
    assert missing.status_code == 404 and "no network 'dmz'" in missing.json()["detail"]

    # A new machine's hardware: bounded, checked, refused before a task is queued.
    with database.session() as session:
        host = session.scalar(select(Host).where(Host.name == "local"))
        session.add(Template(host_id=host.id, name="deb"))
    new = {"name": "big-1", "template": "deb"}
    for extra in ({"disks": [{"size_gib": 1}] * 16}, {"disks": [{"size_gib": 0}]},
                  {"disks": [{"size_gib": 1, "bus": "ide"}]},
                  {"nics": [{"network": "default"}] * 9},
                  {"nics": [{"network": "default", "mac": "ff:ff:ff:ff:ff:ff"}]},
                  {"firmware": "efi"}):
        answer = client.post(f"{API}/vms", headers=otto, json={**new, **extra})
        assert answer.status_code == 422, (extra, answer.text)
    refused = client.post(f"{API}/vms", headers=otto,
                          json={**new, "nics": [{"network": "default"}, {"network": "dmz"}]})
    assert refused.status_code == 404 and "no network 'dmz'" in refused.json()["detail"]
    with database.session() as session:
        assert session.scalars(select(Task)).all() == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_vms_hardware_changed_through_the_api(
        client: TestClient, database: Database, settings: Settings, vm: str,
        pool_name: str) -> None:
    add_vm(database, vm, "halted")
    otto = login(client, "otto")
    base = f"{API}/vms/local/{vm}"
    seen = client.get(f"{base}/hardware", headers=login(client, "vera"))
    assert seen.status_code == 200, seen.text
    found = seen.json()
    assert found["firmware"] == "uefi" and found["boot_order"] == ["hd"]
    assert [(d["device"], d["boot"], d["volume"]) for d in found["disks"]] == \
        [("vda", True, f"base-{vm}.qcow2")]
    assert found["cdroms"] == [{"device": "sdb", "image": None}]

    added = client.post(f"{base}/disks", headers=otto, json={"size_gib": 1, "bus": "scsi"})
    assert added.status_code == 200, added.text
    assert added.json() == {"device": "sda", "applies": "now"}
    assert f"{vm}-sda.qcow2" in volumes(pool_name)
    grown = client.patch(f"{base}/disks/sda", headers=otto, json={"size_gib": 2})
    assert grown.status_code == 200, grown.text
    shrink = client.patch(f"{base}/disks/sda", headers=otto, json={"size_gib": 1})
    assert shrink.status_code == 409 and "only grows" in shrink.json()["detail"]
    assert client.patch(f"{base}/disks/vdz", headers=otto, json={"size_gib": 2}
                        ).status_code == 404
    disks = {d["device"]: d for d in client.get(f"{base}/hardware", headers=otto
                                                 ).json()["disks"]}
    assert disks["sda"]["size"] == 2 << 30 and disks["sda"]["bus"] == "scsi"

    mac = "52:54:00:7a:00:01"
    nic = client.post(f"{base}/nics", headers=otto,
                      json={"network": "default", "mac": mac, "model": "e1000"})
    assert nic.status_code == 200 and nic.json() == {"device": mac, "applies": "now"}
    again = client.post(f"{base}/nics", headers=otto, json={"network": "default", "mac": mac})
    assert again.status_code == 409 and mac in again.json()["detail"]
    assert client.delete(f"{base}/nics/{mac}", headers=otto).status_code == 200
    assert client.delete(f"{base}/nics/{mac}", headers=otto).status_code == 404

    store = settings.data_dir / "images"
    store.mkdir(parents=True, exist_ok=True)
    write_seed_iso(Seed("i-1", "cd"), store / "tools.iso")
    (store / "notes.iso").write_bytes(b"not a CD" * 8192)
    not_iso = client.post(f"{base}/cdrom", headers=otto, json={"image": "notes.iso"})
    assert not_iso.status_code == 400 and "not an ISO 9660" in not_iso.json()["detail"]
    assert str(store) not in not_iso.text
    assert client.post(f"{base}/cdrom", headers=otto, json={"image": "gone.iso"}
                       ).status_code == 404
    inserted = client.post(f"{base}/cdrom", headers=otto, json={"image": "tools.iso"})
    assert inserted.status_code == 200 and inserted.json()["device"] == "sdb"
    cds = client.get(f"{base}/hardware", headers=otto).json()["cdroms"]
    assert cds == [{"device": "sdb", "image": f"{vm}-tools.iso"}]
    assert client.delete(f"{base}/cdrom", headers=otto).status_code == 200
    assert f"{vm}-tools.iso" not in volumes(pool_name)  # its copy went with it
    assert client.delete(f"{base}/cdrom", headers=otto).status_code == 409

    # Its boot disk is not one glasspane made for it: never deleted; its own is.
    kept = client.delete(f"{base}/disks/vda", headers=otto)
    assert kept.status_code == 409 and "not a disk glasspane made" in kept.json()["detail"]
    assert client.delete(f"{base}/disks/sda", headers=otto).status_code == 200
    assert volumes(pool_name) == {f"base-{vm}.qcow2"}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_disk_added_from_the_cli_through_the_server(
        capsys: pytest.CaptureFixture[str], settings: Settings, database: Database, vm: str,
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pool_name: str) -> None:
    add_vm(database, vm, "halted")
    server = serve(create_app(settings, database, sync_interval=3600))
    try:
        monkeypatch.delenv("GLASSPANE_TOKEN", raising=False)
        password = tmp_path / "pw"
        password.write_text(PASSWORDS["otto"])
        r = run_cli(capsys, "--server", server.url, "login", "otto", "--password-file",
                    str(password))
        assert r.code == 0, r.err
        r = run_cli(capsys, "--server", server.url, "vm", "disk", "add", vm, "1")
        assert r.code == 0, r.err
        assert r.out.strip() == f"VM {vm}: disk vdb (now)"
        r = run_cli(capsys, "--server", server.url, "vm", "disk", "resize", vm, "vdb", "1")
        assert r.code == 0, r.err
        r = run_cli(capsys, "--server", server.url, "vm", "nic", "add", vm, "default",
                    "--mac", "03:00:00:00:00:01")
        assert r.code == 2 and "nic.add" in r.err  # multicast: refused before any call
        r = run_cli(capsys, "--server", server.url, "vm", "hardware", vm)
        assert r.code == 0 and "vdb  1024 MiB  virtio" in r.out, r.out + r.err
        r = run_cli(capsys, "--server", server.url, "vm", "info", vm, "--json")
        assert r.code == 0, r.err
        hardware = json.loads(r.out)["hardware"]
        assert [d["device"] for d in hardware["disks"]] == ["vda", "vdb"]
        assert hardware["firmware"] == "uefi"
    finally:
        server.stop()
    assert f"{vm}-vdb.qcow2" in volumes(pool_name)


def test_destroy_removes_the_vms_own_disks_and_nothing_it_shares(
        settings: Settings, pool_name: str) -> None:
    """Its disk and added disks go; a disk of another VM attached to it, and a disk a
    volume is made over (a backing chain), stay."""
    from glasspane.vms.service import destroy_vm
    driver = LibvirtDriver("local", URI)
    driver.ensure_storage(pool_name)
    name = f"gp-hwd-{uuid.uuid4().hex[:6]}"
    other = f"{name}-2"  # a name starting with the first's: its disk is not the first's
    try:
        define(driver, pool_name, name, f"{name}.qcow2", Firmware.UEFI)
        define(driver, pool_name, other, f"{other}.qcow2")
        from glasspane.enums import DiskBus
        driver.add_disk(name, 1 << 20, DiskBus.VIRTIO, pool_name)     # vdb: its own
        chained = driver.add_disk(name, 1 << 20, DiskBus.VIRTIO, pool_name).device
        pool = driver._pool(pool_name)
        over = pool.storageVolLookupByName(f"{name}-{chained}.qcow2").path()
        pool.createXML(f"<volume><name>over.qcow2</name><capacity>1048576</capacity>"
                       f"<target><format type='qcow2'/></target><backingStore><path>{over}"
                       f"</path><format type='qcow2'/></backingStore></volume>", 0)
        # The other VM's disk, attached to this one too.
        dom = driver._conn.lookupByName(name)
        dom.attachDeviceFlags(f"<disk type='file' device='disk'><driver name='qemu' "
                              f"type='qcow2'/><source file='{over[:-len('over.qcow2')]}"
                              f"{other}.qcow2'/><target dev='vdz' bus='virtio'/></disk>",
                              libvirt.VIR_DOMAIN_AFFECT_CONFIG)
        destroy_vm(settings, name)
        assert volumes(pool_name) == {f"{other}.qcow2", f"{name}-{chained}.qcow2",
                                      "over.qcow2"}
    finally:
        for each in (name, other):
            try:
                driver._conn.lookupByName(each).undefineFlags(
                    libvirt.VIR_DOMAIN_UNDEFINE_NVRAM)
            except libvirt.libvirtError:
                pass
        driver.close()


def test_a_local_iso_file_goes_in_the_cd_drive_without_a_server(
        capsys: pytest.CaptureFixture[str], settings: Settings, vm: str, tmp_path: Path,
        pool_name: str) -> None:
    iso = tmp_path / "rescue.iso"
    write_seed_iso(Seed("i-2", "rescue"), iso)
    r = run_cli(capsys, "vm", "cdrom", "insert", vm, str(iso))
    assert r.code == 0, r.err
    assert r.out.strip() == f"VM {vm}: rescue.iso in CD drive sdb (now)"
    assert (settings.data_dir / "images" / "rescue.iso").read_bytes() == iso.read_bytes()
    assert f"{vm}-rescue.iso" in volumes(pool_name)
    (tmp_path / "text.iso").write_text("hello")
    r = run_cli(capsys, "vm", "cdrom", "insert", vm, str(tmp_path / "text.iso"))
    assert r.code == 2 and "not an ISO 9660 image" in r.err
    r = run_cli(capsys, "vm", "cdrom", "eject", vm)
    assert r.code == 0 and f"{vm}-rescue.iso" not in volumes(pool_name)
