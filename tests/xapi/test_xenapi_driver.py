"""XenServer/XCP-ng pools through the XenAPI driver, against the loopback XAPI built from the
published datamodel (tests/xapi/server.py), with the official XenAPI SDK unchanged: host
registration with the password kept apart (encrypted in the database), inventory, lifecycle
with XAPI's own errors, session expiry, a pool member redirecting to its master, and the
inventory sync."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from glasspane.hosts.registry import HostRegistry
from glasspane.settings import Settings
from tests.cli.runner import run_cli
from tests.waiting import wait_for
from tests.xapi.server import Running, Xapi, small_pool, start


def add_pool(capsys: pytest.CaptureFixture[str], url: str, password_file: Path,
             name: str = "xcp") -> None:
    r = run_cli(capsys, "host", "add", name, url, "--driver", "xenapi", "--user", "root",
                "--password-file", str(password_file))
    assert r.code == 0, r.err


def test_register_list_and_act(capsys: pytest.CaptureFixture[str], settings: Settings,
                               xapi: Running, password_file: Path, tmp_path: Path) -> None:
    wrong = tmp_path / "wrong"
    wrong.write_text("nope")
    r = run_cli(capsys, "host", "add", "xcp", xapi.url, "--driver", "xenapi", "--user", "root",
                "--password-file", str(wrong))
    assert r.code == 5 and "refused user 'root': wrong user name or password" in r.err
    assert "xcp" not in run_cli(capsys, "host", "list").out
    key = settings.config_dir / "host-secrets.key"
    assert not key.exists()  # made when a first password is stored

    add_pool(capsys, xapi.url, password_file)
    assert HostRegistry(settings).password("xcp") == "s3cret-pool"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    stored = b"".join(p.read_bytes() for p in settings.data_dir.glob("glasspane.db*"))
    assert b"xcp" in stored and b"s3cret-pool" not in stored  # the database, the WAL

    info = json.loads(run_cli(capsys, "host", "info", "xcp", "--json").out)
    assert info["hypervisor"] == "XCP-ng 8.3.0" and info["cpus"] == 16
    assert info["memory_mib"] == 64 << 10 and info["acceleration"]["kind"] == "xen"
    assert [s["name"] for s in info["storage"]] == ["Local storage"]
    assert [(n["name"], n["bridge"]) for n in info["networks"]] == [
        ("Pool-wide network", "xenbr0"), ("lab-vlan-20", "xapi1")]

    vms = {v["name"]: v for v in json.loads(run_cli(capsys, "vm", "list", "--host", "xcp",
                                                    "--json").out)}
    assert set(vms) == {"web-1", "db-1"}  # not the template, not the control domain
    assert vms["web-1"]["power_state"] == "running"
    assert vms["web-1"]["addresses"] == ["10.0.1.20", "fe80::1"]
    assert vms["db-1"]["power_state"] == "halted" and vms["db-1"]["addresses"] == []

    r = run_cli(capsys, "vm", "start", "db-1", "--host", "xcp")
    assert r.code == 0 and r.out.strip() == "VM db-1: running", r.err
    r = run_cli(capsys, "vm", "start", "db-1", "--host", "xcp")
    assert r.code == 5 and "the VM is running, it must be halted" in r.err
    assert "pause" in run_cli(capsys, "vm", "pause", "db-1", "--host", "xcp").out
    assert "running" in run_cli(capsys, "vm", "resume", "db-1", "--host", "xcp").out
    r = run_cli(capsys, "vm", "start", "ghost", "--host", "xcp")
    assert r.code == 5 and "no VM named 'ghost' on host xcp" in r.err
    r = run_cli(capsys, "vm", "destroy", "db-1", "--host", "xcp")
    assert r.code == 0 and "db-1" not in run_cli(capsys, "vm", "list", "--host", "xcp").out

    assert run_cli(capsys, "host", "remove", "xcp").code == 0
    assert [r.name for r in HostRegistry(settings).all()] == ["local"]


def test_expired_session_is_renewed(settings: Settings, xapi: Running) -> None:
    from glasspane.hypervisors.xenapi_driver import XenApiDriver
    driver = XenApiDriver("xcp", xapi.url, "root", "s3cret-pool")
    try:
        assert len(driver.list_vms()) == 2
        xapi.xapi.sessions.clear()  # XAPI expired every session (restart, timeout)
        assert len(driver.list_vms()) == 2
        assert xapi.xapi.calls.count("session.login_with_password") == 2
    finally:
        driver.close()


def test_pool_member_redirects_to_master(settings: Settings, xapi: Running) -> None:
    from glasspane.hypervisors.xenapi_driver import XenApiDriver
    address = xapi.url.removeprefix("http://")
    member = start(Xapi(password="s3cret-pool", master_address=address))
    try:
        driver = XenApiDriver("xcp", member.url, "root", "s3cret-pool")
        assert driver.uri == xapi.url and len(driver.list_vms()) == 2
        driver.close()
    finally:
        member.stop()


def test_unreachable_pool(settings: Settings) -> None:
    from glasspane.errors import HostUnreachable
    from glasspane.hypervisors.xenapi_driver import XenApiDriver
    with pytest.raises(HostUnreachable, match=r"cannot reach XAPI at http://127\.0\.0\.1:9/"):
        XenApiDriver("xcp", "http://127.0.0.1:9/", "root", "x")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_pool_in_the_inventory(capsys: pytest.CaptureFixture[str], settings: Settings,
                               xapi: Running, password_file: Path, database: object) -> None:
    from sqlalchemy import select

    from glasspane.inventory.db import Database
    from glasspane.inventory.models import Host, Template, Vm
    from glasspane.inventory.sync import sync_hosts
    assert isinstance(database, Database)
    add_pool(capsys, xapi.url, password_file)
    sync_hosts(database, settings)
    with database.session() as session:
        host = session.scalar(select(Host).where(Host.name == "xcp"))
        assert host is not None and host.state == "ok" and host.driver == "xenapi"
        vms = {v.name: v.power_state for v in session.scalars(
            select(Vm).where(Vm.host_id == host.id))}
    assert vms == {"web-1": "running", "db-1": "halted"}
    with database.session() as session:
        templates = [t.name for t in session.scalars(
            select(Template).where(Template.host_id == host.id))]
    assert templates == ["debian-12"]  # ready for POST /vms on this pool (not the built-in)
    xapi.stop()  # the pool master goes away: marked unreachable, its VMs kept
    sync_hosts(database, settings)
    with database.session() as session:
        host = session.scalar(select(Host).where(Host.name == "xcp"))
        assert host is not None and host.state == "unreachable"
        assert session.scalar(select(Vm).where(Vm.name == "web-1")) is not None


def test_template_import_streams_an_xva_and_converts_the_rest(
        capsys: pytest.CaptureFixture[str], settings: Settings, xapi: Running,
        password_file: Path, tmp_path: Path) -> None:
    from glasspane.images.convert import convert
    from glasspane.images.sample import write_sample
    add_pool(capsys, xapi.url, password_file)
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), (3 << 20) + 4096)
    xva = tmp_path / "disk.xva"
    convert(str(raw), str(xva), to="xva")

    r = run_cli(capsys, "template", "import", "from-xva", str(xva), "--host", "xcp")
    assert r.code == 0, r.err
    assert xapi.xapi.uploads[-1] == xva.read_bytes()  # sent as it is, byte for byte
    r = run_cli(capsys, "template", "import", "from-raw", str(raw), "--host", "xcp")
    assert r.code == 0, r.err
    templates = {t["name"]: t for t in json.loads(
        run_cli(capsys, "template", "list", "--host", "xcp", "--json").out)}
    assert set(templates) == {"Debian Bookworm 12", "debian-12", "from-xva", "from-raw"}
    assert [n for n, t in templates.items() if t["builtin"]] == ["Debian Bookworm 12"]
    r = run_cli(capsys, "template", "list", "--host", "xcp")
    assert "Debian Bookworm 12  XenServer built-in (no disk" in r.out
    assert templates["from-raw"]["virtual_size"] == raw.stat().st_size
    contents = list(xapi.xapi.disks.values())
    assert contents == [raw.read_bytes(), raw.read_bytes()]
    assert not xapi.xapi.objects["task"]  # tasks cleaned up


def test_cut_off_upload_leaves_nothing(settings: Settings, xapi: Running,
                                       tmp_path: Path) -> None:
    from glasspane.hypervisors.xenapi_driver import XenApiDriver
    from glasspane.images.convert import convert
    from glasspane.images.sample import write_sample
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 4 << 20)
    xva = tmp_path / "disk.xva"
    convert(str(raw), str(xva), to="xva")
    vms_before = set(xapi.xapi.objects["VM"])

    def cut(sent: int) -> None:
        raise ConnectionResetError("the network went away")

    driver = XenApiDriver("xcp", xapi.url, "root", "s3cret-pool")
    try:
        with pytest.raises(Exception, match=r"network went away|cut off"):
            driver.import_xva(str(xva), "half", cut)
    finally:
        driver.close()
    assert set(xapi.xapi.objects["VM"]) == vms_before
    assert not xapi.xapi.disks and not xapi.xapi.objects["task"]


def test_tls_certificate_pinning(capsys: pytest.CaptureFixture[str], settings: Settings,
                                 password_file: Path, tmp_path: Path) -> None:
    from tests.xapi.server import self_signed
    cert, key = self_signed(tmp_path)
    other, _ = self_signed(tmp_path, "impostor.lab")
    running = start(Xapi(password="s3cret-pool"), tls=(cert, key))
    small_pool(running.xapi)
    try:
        base = ["host", "add", "xcp", running.url, "--driver", "xenapi", "--user", "root",
                "--password-file", str(password_file)]
        r = run_cli(capsys, *base)
        assert r.code == 5 and "presented a certificate glasspane does not trust" in r.err
        assert "--ca-file" in r.err
        r = run_cli(capsys, *base, "--ca-file", str(other))
        assert r.code == 5 and "does not trust" in r.err  # not the pinned one
        assert "xcp" not in run_cli(capsys, "host", "list").out
        r = run_cli(capsys, *base, "--ca-file", str(cert))
        assert r.code == 0, r.err
        assert HostRegistry(settings).get("xcp").ca_pem == cert.read_text()
        assert "web-1" in run_cli(capsys, "vm", "list", "--host", "xcp").out
        assert run_cli(capsys, "host", "remove", "xcp").code == 0
        assert [r.name for r in HostRegistry(settings).all()] == ["local"]
    finally:
        running.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_xapi_events_update_the_inventory_between_polls(
        capsys: pytest.CaptureFixture[str], settings: Settings, xapi: Running,
        password_file: Path, database: object) -> None:
    import time

    import XenAPI
    from sqlalchemy import select

    from glasspane.inventory.db import Database
    from glasspane.inventory.models import Vm
    from glasspane.inventory.sync import Syncer
    assert isinstance(database, Database)
    add_pool(capsys, xapi.url, password_file)
    syncer = Syncer(database, settings, interval=3600, container_interval=3600)
    syncer.start()

    def state(name: str) -> str | None:
        with database.session() as session:
            vm = session.scalar(select(Vm).where(Vm.name == name))
            return vm.power_state if vm else None

    try:
        deadline = time.monotonic() + 30
        while state("web-1") != "running":
            assert time.monotonic() < deadline, "the first pass did not happen"
            time.sleep(0.2)
        # The watcher has its token: its first event.from was answered, its second waits.
        wait_for(lambda: xapi.xapi.calls.count("event.from") >= 2, "the event watcher's token")
        # Another XAPI client (XenCenter, say) pauses the VM; the next poll is an hour away.
        other = XenAPI.Session(xapi.url)
        other.xenapi.login_with_password("root", "s3cret-pool", "2.21", "test")
        [ref] = other.xenapi.VM.get_by_name_label("web-1")
        other.xenapi.VM.pause(ref)
        deadline = time.monotonic() + 20
        while state("web-1") != "paused":
            assert time.monotonic() < deadline, "event.from did not bring the change"
            time.sleep(0.2)
    finally:
        syncer.stop()


def test_provision_from_a_template(capsys: pytest.CaptureFixture[str], settings: Settings,
                                   xapi: Running, password_file: Path) -> None:
    import pycdlib

    from glasspane.guests.keys import management_public_key
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    r = run_cli(capsys, "vm", "create", "web-2", "--template", "debian-12", "--host",
                "xcp", "--cpus", "4", "--memory", "1024", "--disk", "20", "--no-wait")
    assert r.code == 0 and "created VM web-2 on xcp: 10.0.1.99" in r.out, r.err
    [(ref, vm)] = [(k, v) for k, v in pool.objects["VM"].items() if v["name_label"] == "web-2"]
    assert not vm["is_a_template"] and vm["power_state"] == "Running"
    assert vm["VCPUs_max"] == vm["VCPUs_at_startup"] == 4
    assert vm["memory_static_max"] == vm["memory_dynamic_max"] == 1 << 30
    disks = [pool.objects["VDI"][pool.objects["VBD"][b]["VDI"]] for b in vm["VBDs"]]
    assert disks[0]["virtual_size"] == 20 << 30  # the template's clone, grown
    seed_vbd = pool.objects["VBD"][vm["VBDs"][1]]
    assert seed_vbd["mode"] == "RO" and seed_vbd["type"] == "Disk"
    iso = pycdlib.PyCdlib()
    import io
    iso.open_fp(io.BytesIO(pool.disks[seed_vbd["VDI"]]))
    assert iso.pvd.volume_identifier.rstrip() == b"cidata"
    meta = io.BytesIO()
    iso.get_file_from_iso_fp(meta, joliet_path="/meta-data")
    assert '"local-hostname": "web-2"' in meta.getvalue().decode()
    assert management_public_key(settings) in meta.getvalue().decode()
    assert "web-2" in run_cli(capsys, "vm", "list", "--host", "xcp").out

    r = run_cli(capsys, "vm", "create", "x-1", "--template", "db-1", "--host", "xcp",
                "--no-wait")
    assert r.code == 2 and "'db-1' is a VM, not a template" in r.err
    r = run_cli(capsys, "vm", "create", "x-1", "--template", "nope", "--host", "xcp",
                "--no-wait")
    assert r.code == 6 and "no template named 'nope' on host xcp" in r.err

    networks = {v["name_label"]: k for k, v in pool.objects["network"].items()}

    def networks_of(vm_name: str) -> list[str]:
        [record] = [v for v in pool.objects["VM"].values() if v["name_label"] == vm_name]
        return [pool.objects["VIF"][vif]["network"] for vif in record["VIFs"]]

    assert networks_of("web-2") == [networks["Pool-wide network"]]  # the template's
    r = run_cli(capsys, "vm", "create", "web-4", "--template", "debian-12", "--host",
                "xcp", "--full", "--network", "lab-vlan-20", "--no-wait")
    assert r.code == 0 and "VM.copy" in pool.calls and "VM.clone" in pool.calls, r.err
    assert networks_of("web-4") == [networks["lab-vlan-20"]]
    assert run_cli(capsys, "vm", "destroy", "web-4", "--host", "xcp").code == 0
    vms_before = set(pool.objects["VM"])
    r = run_cli(capsys, "vm", "create", "web-5", "--template", "debian-12", "--host",
                "xcp", "--network", "nope", "--no-wait")
    assert r.code == 6 and "no network named 'nope' on host xcp" in r.err
    assert "lab-vlan-20" in r.err and set(pool.objects["VM"]) == vms_before

    # A guest that never reports an address: everything made for it is removed again.
    pool.guest_address = ""
    vdis_before = set(pool.objects["VDI"])
    r = run_cli(capsys, "vm", "create", "web-3", "--template", "debian-12", "--host",
                "xcp", "--timeout", "3", "--no-wait")
    assert r.code == 5 and "reported no address within 3 s" in r.err
    assert not [v for v in pool.objects["VM"].values() if v["name_label"] == "web-3"]
    assert set(pool.objects["VDI"]) == vdis_before

    assert run_cli(capsys, "vm", "destroy", "web-2", "--host", "xcp").code == 0
    assert ref not in pool.objects["VM"]
    assert all(pool.objects["VBD"].get(b) is None for b in vm["VBDs"])


def test_snapshots_suspend_and_exports(capsys: pytest.CaptureFixture[str], settings: Settings,
                                       xapi: Running, password_file: Path,
                                       tmp_path: Path) -> None:
    """Snapshot, revert, suspend and resume through XAPI's calls; the VM out again as an XVA
    (/export), a VHD (/export_raw_vdi, made by qemu-img in the loopback XAPI) and a qcow2
    converted from it, each holding exactly the pool's disk."""
    import subprocess

    from glasspane.errors import Conflict
    from glasspane.hosts.service import host_driver
    from glasspane.images.compare import compare_images
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    refs = {v["name_label"]: k for k, v in pool.objects["VM"].items()}
    db = refs["db-1"]
    size = 8 << 20
    content = bytes(range(256)) * 8192 + b"\0" * (4 << 20) + b"glasspane" * 1000
    content = content.ljust(size, b"\0")
    vdi = pool.add("VDI", name_label="db root", virtual_size=size, type="user")
    pool.disks[vdi] = content
    pool.objects["VM"][db]["VBDs"] = [pool.add("VBD", VM=db, VDI=vdi, type="Disk",
                                               userdevice="0", bootable=True, mode="RW")]
    expected = tmp_path / "expected.raw"
    expected.write_bytes(content)

    def cli(*args: str) -> str:
        r = run_cli(capsys, *args, "--host", "xcp")
        assert r.code == 0, r.err
        return r.out

    cli("vm", "snapshot", "db-1", "before")
    r = run_cli(capsys, "vm", "snapshot", "db-1", "before", "--host", "xcp")
    assert r.code == 2 and "already has a snapshot named 'before'" in r.err
    assert "before" not in cli("vm", "list"), "a snapshot is not a VM"
    assert json.loads(cli("vm", "info", "db-1", "--json"))["snapshots"] == ["before"]
    pool.disks[vdi] = b"overwritten".ljust(size, b"x")  # the guest writes after the snapshot
    cli("vm", "revert", "db-1", "before")
    assert pool.disks[vdi] == content
    r = run_cli(capsys, "vm", "revert", "db-1", "after", "--host", "xcp")
    assert r.code == 6 and "has no snapshot named 'after'" in r.err

    cli("vm", "start", "db-1")
    r = run_cli(capsys, "vm", "export", "db-1", str(tmp_path / "running.xva"), "--host", "xcp")
    assert r.code == 2 and "is running: its disk is in use" in r.err
    with host_driver(settings, "xcp") as driver, pytest.raises(Conflict, match="running"):
        driver.export_xva("db-1", str(tmp_path / "direct.xva"), lambda n: None)
    assert not (tmp_path / "direct.xva").exists()
    assert "suspended" in cli("vm", "suspend", "db-1")
    assert pool.objects["VM"][db]["power_state"] == "Suspended"
    assert "running" in cli("vm", "resume", "db-1")
    cli("vm", "shutdown", "db-1")

    for name in ("db.xva", "db.vhd", "db.qcow2", "db.raw"):
        out = tmp_path / name
        assert f"exported VM db-1 from xcp to {out}" in cli("vm", "export", "db-1", str(out),
                                                            "--quiet")
        assert all(r.identical for r in compare_images(str(expected), str(out))), name
    for name, fmt in (("db.vhd", "vpc"), ("db.qcow2", "qcow2"), ("db.raw", "raw")):
        subprocess.run(["qemu-img", "compare", "-q", "-f", "raw", "-F", fmt, str(expected),
                        str(tmp_path / name)], check=True)
    r = run_cli(capsys, "vm", "export", "db-1", str(tmp_path / "db.xva"), "--host", "xcp")
    assert r.code == 2 and "already exists" in r.err
    assert not list(tmp_path.glob(".db.*")), "no temporary file is left"


def test_disk_upload_streams_and_converts(capsys: pytest.CaptureFixture[str],
                                          settings: Settings, xapi: Running,
                                          password_file: Path, tmp_path: Path) -> None:
    """`image upload`: raw and VHD sent to /import_raw_vdi as they are (the loopback XAPI
    decodes the VHD with qemu-img), a qcow2 streamed as raw converted on the fly; a full SR
    and a cut-off upload leave no VDI."""
    from glasspane.hypervisors.xenapi_driver import XenApiDriver
    from glasspane.images.convert import convert
    from glasspane.images.sample import write_sample
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 6 << 20)
    content = raw.read_bytes()
    for name in ("disk.vhd", "disk.qcow2"):
        convert(str(raw), str(tmp_path / name))
    for name in ("disk.raw", "disk.vhd", "disk.qcow2"):
        r = run_cli(capsys, "image", "upload", str(tmp_path / name), "--host", "xcp",
                    "--name", f"up-{name}", "--quiet")
        assert r.code == 0 and f"as disk up-{name}" in r.out, r.err
        [vdi] = [k for k, v in pool.objects["VDI"].items() if v["name_label"] == f"up-{name}"]
        assert pool.disks[vdi].ljust(len(content), b"\0") == content, name
    assert pool.uploads[-2] == (tmp_path / "disk.vhd").read_bytes(), "the VHD went as it is"

    vdis = set(pool.objects["VDI"])
    sr = next(iter(pool.objects["SR"].values()))
    sr["physical_utilisation"] = sr["physical_size"] - (1 << 20)
    r = run_cli(capsys, "image", "upload", str(raw), "--host", "xcp", "--quiet")
    assert r.code == 5 and "the SR is full" in r.err and "choose another SR" in r.err
    sr["physical_utilisation"] = 0

    def cut(sent: int) -> None:
        raise ConnectionResetError("the network went away")

    driver = XenApiDriver("xcp", xapi.url, "root", "s3cret-pool")
    try:
        with pytest.raises(Exception, match=r"network went away|cut off"):
            driver.upload_disk(str(tmp_path / "disk.qcow2"), "half", cut)
    finally:
        driver.close()
    assert set(pool.objects["VDI"]) == vdis, "no VDI is left behind"
    r = run_cli(capsys, "image", "upload", str(raw), "--host", "local", "--quiet")
    assert r.code == 2 and "host local (libvirt) does not support image transfer" in r.err


def test_set_resources_for_the_next_boot(xapi: Running) -> None:
    """vCPUs and memory of a halted VM, within XAPI's rules: VCPUs_at_startup never above
    VCPUs_max on the way (shrinking and growing), the memory limits in order with static_min
    lowered when it would be above them; a VM that is not halted, a vCPU count the VM's
    cores-per-socket does not divide and a size below 1 are refused, changing nothing."""
    from glasspane import hypervisors
    from glasspane.errors import Conflict, NotFound, UsageError
    from glasspane.hypervisors.capabilities import Capability, require
    pool = xapi.xapi
    [db] = [r for r, v in pool.objects["VM"].items() if v["name_label"] == "db-1"]
    vm = pool.objects["VM"][db]  # 4 vCPUs, 8 GiB, halted
    vm["memory_static_min"] = 1 << 30
    driver = require(hypervisors.connect("xcp", xapi.url, "xenapi", user="root",
                                         password=lambda: "s3cret-pool"),
                     Capability.RESOURCES, "the test")
    try:
        driver.set_resources("db-1", 2, 512)
        assert (vm["VCPUs_max"], vm["VCPUs_at_startup"]) == (2, 2)
        assert [vm[f"memory_{k}"] for k in ("static_min", "dynamic_min", "dynamic_max",
                                           "static_max")] == [512 << 20] * 4
        driver.set_resources("db-1", 6, None)
        assert (vm["VCPUs_max"], vm["VCPUs_at_startup"]) == (6, 6)
        assert vm["memory_static_max"] == 512 << 20, "None leaves the memory as it was"
        driver.set_resources("db-1", None, 2048)
        assert (vm["VCPUs_max"], vm["memory_static_min"], vm["memory_static_max"]) == \
            (6, 512 << 20, 2048 << 20)

        vm["platform"] = {"cores-per-socket": "4"}
        with pytest.raises(UsageError, match="4 cores per socket, and 6 vCPUs"):
            driver.set_resources("db-1", 6, 1024)
        with pytest.raises(UsageError, match="0 vCPUs is not a size"):
            driver.set_resources("db-1", 0, None)
        assert (vm["VCPUs_max"], vm["memory_static_max"]) == (6, 2048 << 20)

        with pytest.raises(Conflict, match="VM web-1 on host xcp: setting its vCPUs and "
                                           "memory: the VM is running, it must be halted"):
            driver.set_resources("web-1", 1, 256)
        with pytest.raises(NotFound, match="no VM named 'ghost' on host xcp"):
            driver.set_resources("ghost", 1, None)
    finally:
        driver.close()
