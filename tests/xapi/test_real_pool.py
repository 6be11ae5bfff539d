"""The XenAPI scenarios against a real XenServer/XCP-ng pool: opt-in, since none runs here.

    GLASSPANE_XAPI_URL=https://pool-master GLASSPANE_XAPI_USER=root \\
    GLASSPANE_XAPI_PASSWORD_FILE=/path/pw [GLASSPANE_XAPI_CA_FILE=master.pem] \\
    [GLASSPANE_XAPI_VM=a-halted-disposable-vm] .venv/bin/pytest tests/xapi/test_real_pool.py

Every object made is removed again; GLASSPANE_XAPI_VM, if given, gets a snapshot (removed) and
is exported, never changed otherwise."""

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
