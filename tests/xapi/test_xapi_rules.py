"""What a real XenServer 8 / XCP-ng 8.3 pool does that the driver once missed, against the
loopback XAPI made to follow xen-api's sources (tests/xapi/handlers.py, server.py): vCPU
rules, import handlers that answer before reading, exports without a length, redirects to
the member that sees the SR (over TLS, with that member's certificate), /import without a
default SR; built-in templates, snapshots destroyed with their VM, a pinned member's
certificate and its master."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from glasspane.settings import Settings
from tests.cli.runner import run_cli
from tests.xapi.server import Running, Xapi, add_member, self_signed, small_pool, start
from tests.xapi.test_xenapi_driver import add_pool


def named(pool: Xapi, klass: str, name: str) -> list[str]:
    return [r for r, v in pool.objects[klass].items() if v["name_label"] == name]


def with_disk(pool: Xapi, vm: str, content: bytes, sr: str = "OpaqueRef:NULL") -> str:
    vdi = pool.add("VDI", name_label=f"{vm} root", virtual_size=len(content), type="user",
                   SR=sr)
    pool.disks[vdi] = content
    pool.objects["VM"][vm]["VBDs"].append(pool.add("VBD", VM=vm, VDI=vdi, type="Disk",
                                                   userdevice="0", mode="RW"))
    return vdi


def test_fewer_vcpus_than_the_template(capsys: pytest.CaptureFixture[str], settings: Settings,
                                       xapi: Running, password_file: Path) -> None:
    """Failure 1: XAPI refuses a VCPUs_max below VCPUs_at_startup, and VM.start a count that
    is not a multiple of cores-per-socket."""
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    [template] = named(pool, "VM", "debian-12")
    pool.objects["VM"][template].update(VCPUs_max=4, VCPUs_at_startup=4,
                                        platform={"cores-per-socket": "2"})
    r = run_cli(capsys, "vm", "create", "small", "--template", "debian-12", "--host", "xcp",
                "--cpus", "2", "--no-wait")
    assert r.code == 0, r.err
    [vm] = named(pool, "VM", "small")
    assert (pool.objects["VM"][vm]["VCPUs_max"], pool.objects["VM"][vm]["VCPUs_at_startup"]) \
        == (2, 2)
    vdis = set(pool.objects["VDI"])
    r = run_cli(capsys, "vm", "create", "odd", "--template", "debian-12", "--host", "xcp",
                "--cpus", "3", "--no-wait")
    assert r.code == 2 and "2 cores per socket" in r.err and "--cpus 2" in r.err, r.err
    assert not named(pool, "VM", "odd") and set(pool.objects["VDI"]) == vdis
    r = run_cli(capsys, "vm", "create", "big", "--template", "debian-12", "--host", "xcp",
                "--cpus", "6", "--no-wait")
    assert r.code == 0, r.err


def test_a_failed_upload_is_a_failure(capsys: pytest.CaptureFixture[str], settings: Settings,
                                      xapi: Running, password_file: Path,
                                      tmp_path: Path) -> None:
    """Failure 2: /import_raw_vdi says 200 before it reads; the SR failing afterwards shows
    only in the task, which glasspane now names and waits for."""
    from glasspane.images.sample import write_sample
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 2 << 20)
    vdis = set(pool.objects["VDI"])
    pool.faults["/import_raw_vdi"] = ["VDI_IO_ERROR", "Device I/O errors"]
    r = run_cli(capsys, "image", "upload", str(raw), "--host", "xcp", "--quiet")
    assert r.code == 5 and "VDI_IO_ERROR" in r.err, (r.out, r.err)
    assert set(pool.objects["VDI"]) == vdis, "the half-written VDI is removed"
    # The cloud-init seed goes the same way: the VM is not started on a missing seed.
    r = run_cli(capsys, "vm", "create", "seedless", "--template", "debian-12", "--host", "xcp",
                "--no-wait")
    assert r.code == 5 and "cloud-init seed" in r.err and "VDI_IO_ERROR" in r.err, r.err
    assert not named(pool, "VM", "seedless") and set(pool.objects["VDI"]) == vdis
    assert not pool.objects["task"], "every task is removed"


@pytest.mark.parametrize("name", ["out.raw", "out.vhd", "out.xva", "out.qcow2"])
def test_a_cut_off_export_is_not_complete(capsys: pytest.CaptureFixture[str],
                                          settings: Settings, xapi: Running,
                                          password_file: Path, tmp_path: Path,
                                          name: str) -> None:
    """Failure 3: exports carry no Content-Length; a connection cut cleanly between XAPI and
    glasspane, with XAPI's task a success, must still not pass for a whole export, and a
    failure midway shows XAPI's reason."""
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    [db] = named(pool, "VM", "db-1")
    with_disk(pool, db, (b"glasspane" * 1000).ljust(6 << 20, b"\x01"))
    out = tmp_path / name
    pool.cut_after = 3 << 20
    r = run_cli(capsys, "vm", "export", "db-1", str(out), "--host", "xcp", "--quiet")
    assert r.code == 5 and "ended early" in r.err, (r.out, r.err)
    assert not out.exists() and not list(tmp_path.glob(".out*"))
    pool.cut_after = None
    handler = "/export" if name.endswith(".xva") else "/export_raw_vdi"
    pool.faults[handler] = ["VDI_IO_ERROR", "Device I/O errors"]
    r = run_cli(capsys, "vm", "export", "db-1", str(out), "--host", "xcp", "--quiet")
    assert r.code == 5 and "VDI_IO_ERROR" in r.err, (r.out, r.err)
    assert not out.exists()
    del pool.faults[handler]
    r = run_cli(capsys, "vm", "export", "db-1", str(out), "--host", "xcp", "--quiet")
    assert r.code == 0 and out.exists(), r.err
    assert not pool.objects["task"]


def test_import_names_its_sr(settings: Settings, xapi: Running, tmp_path: Path) -> None:
    """Failure 5: without sr_id, /import takes pool.default_SR, and fails before the body
    when it is unset; glasspane names the SR."""
    from glasspane.hypervisors.xenapi_driver import XenApiDriver
    from glasspane.images.convert import convert
    from glasspane.images.sample import write_sample
    pool = xapi.xapi
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 2 << 20)
    xva = tmp_path / "disk.xva"
    convert(str(raw), str(xva), to="xva")
    next(iter(pool.objects["pool"].values()))["default_SR"] = "OpaqueRef:NULL"
    driver = XenApiDriver("xcp", xapi.url, "root", "s3cret-pool")
    try:
        driver.import_xva(str(xva), "no-default", lambda n: None)
    finally:
        driver.close()
    [vm] = named(pool, "VM", "no-default")
    [vbd] = pool.objects["VM"][vm]["VBDs"]
    [sr] = named(pool, "SR", "Local storage")
    assert pool.objects["VDI"][pool.objects["VBD"][vbd]["VDI"]]["SR"] == sr


def test_redirects_to_the_member_that_sees_the_sr(settings: Settings, tmp_path: Path) -> None:
    """Failure 4, over TLS: every handler redirects to the member whose local SR holds the
    disk; glasspane follows, checking the member's certificate against the fingerprint XAPI
    lists for it (the master's pinned certificate does not cover it)."""
    from glasspane.errors import HostUnreachable
    from glasspane.hypervisors.xenapi_driver import XenApiDriver
    from glasspane.images.convert import convert
    from glasspane.images.sample import write_sample
    master_tls = self_signed(tmp_path, "xcp1.lab")
    member_tls = self_signed(tmp_path, "xcp2.lab")
    running = start(Xapi(password="s3cret-pool"), tls=master_tls)
    pool = running.xapi
    small_pool(pool)
    _, member_sr, member = add_member(pool, tls=member_tls)
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 3 << 20)
    xva = tmp_path / "disk.xva"
    convert(str(raw), str(xva), to="xva")
    driver = XenApiDriver("xcp", running.url, "root", "s3cret-pool",
                          ca_file=str(master_tls[0]))
    try:
        uuid = driver.upload_disk(str(raw), "on-xcp2", lambda n: None, sr="Local storage on xcp2")
        [vdi] = [r for r, v in pool.objects["VDI"].items() if v["uuid"] == uuid]
        assert pool.objects["VDI"][vdi]["SR"] == member_sr
        assert pool.disks[vdi] == raw.read_bytes()
        driver.import_xva(str(xva), "template-on-xcp2", lambda n: None,
                          sr="Local storage on xcp2")
        [vm] = named(pool, "VM", "template-on-xcp2")
        [vbd] = pool.objects["VM"][vm]["VBDs"]
        assert pool.objects["VDI"][pool.objects["VBD"][vbd]["VDI"]]["SR"] == member_sr
        pool.objects["VM"][vm]["is_a_template"] = False
        out = tmp_path / "back.raw"
        assert driver.export_disk("template-on-xcp2", 0, "raw", str(out), lambda n: None) \
            == raw.stat().st_size
        assert out.read_bytes() == raw.read_bytes()
        driver.export_xva("template-on-xcp2", str(tmp_path / "back.xva"), lambda n: None)

        # The member presents a certificate other than the one XAPI lists for it.
        [listed] = pool.objects["Certificate"].values()
        listed["fingerprint"] = "AB:" * 31 + "AB"
        with pytest.raises(HostUnreachable, match="other than the one XAPI lists"):
            driver.export_disk("template-on-xcp2", 0, "raw", str(out), lambda n: None)
        assert not out.exists()
    finally:
        driver.close()
        member.stop()
        running.stop()


def test_a_pinned_member_certificate_and_the_master(capsys: pytest.CaptureFixture[str],
                                                    settings: Settings, password_file: Path,
                                                    tmp_path: Path) -> None:
    """Added by a member's address with the member's certificate pinned: XAPI sends
    glasspane to the master, whose certificate is another; said so, with what to pin."""
    master_tls = self_signed(tmp_path, "xcp1.lab")
    member_tls = self_signed(tmp_path, "xcp2.lab")
    running = start(Xapi(password="s3cret-pool"), tls=master_tls)
    pool = running.xapi
    refs = small_pool(pool)
    pool.objects["host"][refs["host"]]["address"] = running.url.split("://", 1)[1]
    _, _, member = add_member(pool, tls=member_tls)
    try:
        base = ["host", "add", "xcp", member.url, "--driver", "xenapi", "--user", "root",
                "--password-file", str(password_file)]
        r = run_cli(capsys, *base, "--ca-file", str(member_tls[0]))
        assert r.code == 5 and "is a pool member; its master" in r.err, r.err
        assert "pin the master's certificate" in r.err
        bundle = tmp_path / "both.pem"
        bundle.write_text(member_tls[0].read_text() + master_tls[0].read_text())
        r = run_cli(capsys, *base, "--ca-file", str(bundle))
        assert r.code == 0, r.err
        assert "web-1" in run_cli(capsys, "vm", "list", "--host", "xcp").out
    finally:
        member.stop()
        running.stop()


def test_builtin_templates_are_not_provisioned(capsys: pytest.CaptureFixture[str],
                                               settings: Settings, xapi: Running,
                                               password_file: Path) -> None:
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    vms, vdis = set(pool.objects["VM"]), set(pool.objects["VDI"])
    r = run_cli(capsys, "vm", "create", "blank", "--template", "Debian Bookworm 12", "--host",
                "xcp", "--no-wait")
    assert r.code == 2 and "one of XenServer's built-in templates" in r.err, r.err
    assert "template import" in r.err
    assert set(pool.objects["VM"]) == vms and set(pool.objects["VDI"]) == vdis
    listed = json.loads(run_cli(capsys, "template", "list", "--host", "xcp", "--json").out)
    assert {t["name"]: t["builtin"] for t in listed} == {"Debian Bookworm 12": True,
                                                         "debian-12": False}


def test_destroying_a_vm_removes_its_snapshots(capsys: pytest.CaptureFixture[str],
                                               settings: Settings, xapi: Running,
                                               password_file: Path) -> None:
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    [db] = named(pool, "VM", "db-1")
    with_disk(pool, db, b"x" * (1 << 20))
    for name in ("one", "two"):
        assert run_cli(capsys, "vm", "snapshot", "db-1", name, "--host", "xcp").code == 0
    assert len(pool.objects["VDI"]) == 4  # the template's, the VM's, two snapshots'
    r = run_cli(capsys, "vm", "destroy", "db-1", "--host", "xcp")
    assert r.code == 0, r.err
    assert not [v for v in pool.objects["VM"].values() if v["is_a_snapshot"]]
    assert len(pool.objects["VDI"]) == 1 and not pool.disks


def test_no_redirect_from_https_to_http(tmp_path: Path) -> None:
    """The session id is in the query: a redirect may not take it off TLS."""
    import io
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from glasspane.hypervisors import xapi_http

    class Downgrade(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(302)
            self.send_header("Location", "http://127.0.0.1:9" + self.path)
            self.send_header("Content-Length", "0")
            self.end_headers()

    cert, key = self_signed(tmp_path)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Downgrade)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert), str(key))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    trust = ssl.create_default_context(cafile=str(cert))
    trust.check_hostname = False
    try:
        with pytest.raises(xapi_http.HttpFailure, match="HTTPS to plain HTTP"):
            xapi_http.get(f"https://127.0.0.1:{server.server_address[1]}/export_raw_vdi"
                          "?session_id=OpaqueRef:secret", io.BytesIO(), lambda n: None,
                          lambda netloc: xapi_http.Peer(trust))
    finally:
        server.shutdown()
        server.server_close()
