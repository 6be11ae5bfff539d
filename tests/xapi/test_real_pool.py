"""The XenAPI scenarios against a real XenServer/XCP-ng pool: opt-in, since none runs here.

    GLASSPANE_XAPI_URL=https://pool-master GLASSPANE_XAPI_USER=root \\
    GLASSPANE_XAPI_PASSWORD_FILE=/path/pw [GLASSPANE_XAPI_CA_FILE=master.pem] \\
    [GLASSPANE_XAPI_VM=a-halted-disposable-vm] [GLASSPANE_XAPI_TEMPLATE=a-template-with-a-disk] \\
    [GLASSPANE_XAPI_MEMBER_SR=a-local-sr-of-a-member] .venv/bin/pytest tests/xapi/test_real_pool.py

Every object made is removed again; GLASSPANE_XAPI_VM, if given, gets a snapshot (removed) and
is exported, never changed otherwise; GLASSPANE_XAPI_TEMPLATE is cloned (the clone removed).
The last five tests are the five ways the driver once failed a real pool (issue 19)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from glasspane.settings import Settings
from tests.cli.runner import run_cli

URL = os.environ.get("GLASSPANE_XAPI_URL")
pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not URL, reason="GLASSPANE_XAPI_URL names no real pool")]


@pytest.fixture
def pool(capsys: pytest.CaptureFixture[str], settings: Settings) -> str:
    args = ["host", "add", "real", str(URL), "--driver", "xenapi", "--user",
            os.environ.get("GLASSPANE_XAPI_USER", "root"), "--password-file",
            os.environ["GLASSPANE_XAPI_PASSWORD_FILE"]]
    if os.environ.get("GLASSPANE_XAPI_CA_FILE"):
        args += ["--ca-file", os.environ["GLASSPANE_XAPI_CA_FILE"]]
    r = run_cli(capsys, *args)
    assert r.code == 0, r.err
    return "real"


def test_inventory(capsys: pytest.CaptureFixture[str], pool: str) -> None:
    info = json.loads(run_cli(capsys, "host", "info", pool, "--json").out)
    assert info["cpus"] > 0 and info["storage"]
    vms = json.loads(run_cli(capsys, "vm", "list", "--host", pool, "--json").out)
    assert all(v["power_state"] in ("running", "halted", "paused", "suspended") for v in vms)
    assert run_cli(capsys, "template", "list", "--host", pool).code == 0


def test_upload_a_disk(capsys: pytest.CaptureFixture[str], pool: str, settings: Settings,
                       tmp_path: Path) -> None:
    from glasspane.hosts.service import host_driver
    from glasspane.images.convert import convert
    from glasspane.images.sample import write_sample
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 8 << 20)
    convert(str(raw), str(tmp_path / "disk.qcow2"))
    r = run_cli(capsys, "image", "upload", str(tmp_path / "disk.qcow2"), "--host", pool,
                "--name", "glasspane-test-upload", "--quiet")
    assert r.code == 0, r.err
    uuid = r.out.rsplit("(", 1)[1].rstrip(")\n")
    with host_driver(settings, pool) as driver:
        vdi = driver._call("finding the test disk", "VDI.get_by_uuid", uuid)
        assert int(driver._call("reading it", "VDI.get_virtual_size", vdi)) == 8 << 20
        driver._call("removing the test disk", "VDI.destroy", vdi)


@pytest.mark.skipif(not os.environ.get("GLASSPANE_XAPI_VM"), reason="no GLASSPANE_XAPI_VM")
def test_snapshot_and_export(capsys: pytest.CaptureFixture[str], pool: str, settings: Settings,
                             tmp_path: Path) -> None:
    from glasspane.hosts.service import host_driver
    from glasspane.images.check import check_image
    vm = os.environ["GLASSPANE_XAPI_VM"]
    assert run_cli(capsys, "vm", "snapshot", vm, "glasspane-test", "--host", pool).code == 0
    try:
        assert "glasspane-test" in json.loads(run_cli(
            capsys, "vm", "info", vm, "--host", pool, "--json").out)["snapshots"]
    finally:
        with host_driver(settings, pool) as driver:
            snapshot = driver._snapshots(vm)["glasspane-test"]
            driver._destroy_with_disks(snapshot)  # the snapshot's disks go with it
    out = tmp_path / "vm.xva"
    r = run_cli(capsys, "vm", "export", vm, str(out), "--host", pool, "--quiet")
    assert r.code == 0, r.err
    assert check_image(str(out)).ok


# -- the five ways the driver once failed a real pool -------------------------------------------
# Optional: GLASSPANE_XAPI_TEMPLATE (a template of the pool's own, with a disk),
# GLASSPANE_XAPI_MEMBER_SR (a local SR of a host other than the master: redirects).

def test_vcpus_below_the_template(pool: str, settings: Settings) -> None:
    """Failure 1: shrinking sets at_startup first; cores-per-socket is checked first."""
    from glasspane.errors import UsageError
    from glasspane.hosts.service import host_driver
    template = os.environ.get("GLASSPANE_XAPI_TEMPLATE")
    if not template:
        pytest.skip("no GLASSPANE_XAPI_TEMPLATE")
    with host_driver(settings, pool) as driver:
        source = driver._template(template)
        vm = driver._call("cloning", "VM.clone", source, "glasspane-test-vcpus")
        try:
            driver._call("making a VM", "VM.set_is_a_template", vm, False)
            driver._size_cpus(vm, "glasspane-test-vcpus", 4)
            driver._size_cpus(vm, "glasspane-test-vcpus", 1)  # below at_startup: XAPI agrees
            assert int(driver._call("reading", "VM.get_VCPUs_max", vm)) == 1
            driver._call("setting", "VM.set_platform", vm, {"cores-per-socket": "2"})
            with pytest.raises(UsageError, match="cores per socket"):
                driver._check_cpus(vm, "glasspane-test-vcpus", 3)
        finally:
            driver._destroy_with_disks(vm)


def test_a_failed_upload_is_reported(pool: str, settings: Settings, tmp_path: Path) -> None:
    """Failure 2: more bytes than the VDI holds fail in XAPI's task, after its 200."""
    from glasspane.errors import HostError
    from glasspane.hosts.service import host_driver
    data = tmp_path / "too-big.raw"
    data.write_bytes(b"\x01" * (4 << 20))
    with host_driver(settings, pool) as driver:
        vdi = driver._call("making a disk", "VDI.create", {
            "name_label": "glasspane-test-small", "name_description": "", "virtual_size":
            str(1 << 20), "SR": driver._default_sr(), "type": "user", "sharable": False,
            "read_only": False, "other_config": {}})
        try:
            from glasspane.hypervisors.xenapi_driver import _file_blocks
            with pytest.raises(HostError):
                driver._upload("/import_raw_vdi", {"vdi": vdi, "format": "raw"}, 4 << 20,
                               lambda: _file_blocks(str(data)), lambda n: None, "too big")
        finally:
            driver._call("removing the disk", "VDI.destroy", vdi)


@pytest.mark.skipif(not os.environ.get("GLASSPANE_XAPI_VM"), reason="no GLASSPANE_XAPI_VM")
def test_exports_are_checked_whole(pool: str, settings: Settings, tmp_path: Path) -> None:
    """Failure 3: what XAPI's vhd-tool sends passes the checks (raw length, VHD footer, XVA
    last chunks), and a download stopped midway leaves no file and no task."""
    from glasspane.hosts.service import host_driver
    vm = os.environ["GLASSPANE_XAPI_VM"]
    with host_driver(settings, pool) as driver:
        for fmt in ("raw", "vhd"):
            out = tmp_path / f"disk.{fmt}"
            driver.export_disk(vm, 0, fmt, str(out), lambda n: None)
            assert out.exists()

        def stop(count: int) -> None:
            raise ConnectionResetError("stopped by the test")

        with pytest.raises(Exception, match="stopped by the test"):
            driver.export_disk(vm, 0, "raw", str(tmp_path / "half.raw"), stop)
        assert not (tmp_path / "half.raw").exists()
        labels = [r["name_label"] for r in driver._call("listing tasks",
                                                        "task.get_all_records").values()]
        assert f"exporting disk 0 of VM {vm}" not in labels


@pytest.mark.skipif(not os.environ.get("GLASSPANE_XAPI_MEMBER_SR"),
                    reason="no GLASSPANE_XAPI_MEMBER_SR")
def test_redirect_to_the_member(pool: str, settings: Settings, tmp_path: Path) -> None:
    """Failure 4: an upload to a member's local SR is redirected there and lands."""
    from glasspane.hosts.service import host_driver
    from glasspane.images.sample import write_sample
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 4 << 20)
    with host_driver(settings, pool) as driver:
        uuid = driver.upload_disk(str(raw), "glasspane-test-member", lambda n: None,
                                  sr=os.environ["GLASSPANE_XAPI_MEMBER_SR"])
        vdi = driver._call("finding the disk", "VDI.get_by_uuid", uuid)
        driver._call("removing the disk", "VDI.destroy", vdi)


def test_import_names_its_sr(pool: str, settings: Settings, tmp_path: Path) -> None:
    """Failure 5: /import with sr_id lands on the SR named, whatever pool.default_SR is."""
    from glasspane.hosts.service import host_driver
    from glasspane.images.convert import convert
    from glasspane.images.sample import write_sample
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 4 << 20)
    xva = tmp_path / "disk.xva"
    convert(str(raw), str(xva), to="xva")
    with host_driver(settings, pool) as driver:
        uuid = driver.import_xva(str(xva), "glasspane-test-import", lambda n: None)
        vm = driver._call("finding the template", "VM.get_by_uuid", uuid)
        try:
            [(_, vdi)] = driver._disks(vm)
            assert driver._call("reading", "VDI.get_SR", vdi) == driver._default_sr()
        finally:
            driver._destroy_with_disks(vm)
