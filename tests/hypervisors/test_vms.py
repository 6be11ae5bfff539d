"""VMs on a real libvirtd, from the real Debian template, under TCG: created with an SSH key
and user-data, reached over SSH, destroyed without a trace; a failed creation rolls back."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from tests.cli.runner import run_cli

pytestmark = pytest.mark.integration

USER_DATA = """#cloud-config
write_files:
  - path: /etc/glasspane-test
    content: written by cloud-init
"""


TEST_VMS = ("web-1", "slow-1", "life-1", "multi-1", "multi-2")


@pytest.fixture
def template(storage: str, monkeypatch: pytest.MonkeyPatch,
             libvirt_conn: libvirt.virConnect) -> Iterator[str]:
    from glasspane.settings import Settings
    from glasspane.templates.service import template_from_debian
    with monkeypatch.context() as m:
        m.delenv("GLASSPANE_CACHE_DIR")  # the machine's image cache: built once
        template_from_debian(Settings.load(), "deb")
    yield "deb"
    # A failed test may leave its VM: remove it before its storage goes.
    for dom in libvirt_conn.listAllDomains():
        if dom.name() in TEST_VMS:
            if dom.isActive():
                dom.destroy()
            dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)


@pytest.fixture
def ssh_key(tmp_path: Path) -> Path:
    key = tmp_path / "id_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    return key


def ssh(key: Path, address: str, command: str) -> str:
    return subprocess.run(
        ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o",
         "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10",
         f"debian@{address}", command], capture_output=True, text=True, timeout=60,
        check=True).stdout


def test_create_reach_and_destroy(capsys: pytest.CaptureFixture[str], template: str,
                                  ssh_key: Path, tmp_path: Path, storage: str,
                                  libvirt_conn: libvirt.virConnect) -> None:
    user_data = tmp_path / "user-data"
    user_data.write_text(USER_DATA)
    r = run_cli(capsys, "vm", "create", "web-1", "--template", template, "--disk", "4",
                "--ssh-key", f"{ssh_key}.pub", "--user-data", str(user_data))
    assert r.code == 0, r.err
    assert "SSH-2.0-OpenSSH" in r.out
    # The host is shared (other VMs may be listed): this test's own VM.
    [vm] = [v for v in json.loads(run_cli(capsys, "vm", "list", "--json").out)
            if v["name"] == "web-1"]
    assert vm["power_state"] == "running" and vm["addresses"]
    address = vm["addresses"][0]
    # cloud-init may still be finishing when sshd answers: wait for it inside the guest.
    ssh(ssh_key, address, "timeout 120 sh -c 'until [ -e /var/lib/cloud/instance/boot-finished ];"
                          " do sleep 1; done'")
    assert ssh(ssh_key, address, "hostname").strip() == "web-1"
    assert ssh(ssh_key, address, "cat /etc/glasspane-test").strip() == "written by cloud-init"
    size = int(ssh(ssh_key, address, "lsblk -bno SIZE /dev/vda").split()[0])
    assert size == 4 << 30
    # The disk is a linked clone: a thin qcow2 over the template.
    disk = libvirt_conn.storagePoolLookupByName(storage + "-vms").storageVolLookupByName(
        "web-1.qcow2")
    assert f"/{storage}/deb.qcow2" in disk.XMLDesc(0)
    assert run_cli(capsys, "vm", "destroy", "web-1").code == 0
    assert "web-1" not in [v["name"] for v in
                           json.loads(run_cli(capsys, "vm", "list", "--json").out)]
    pool = libvirt_conn.storagePoolLookupByName(storage + "-vms")
    pool.refresh(0)
    assert pool.listVolumes() == []


def test_failed_creation_rolls_back(capsys: pytest.CaptureFixture[str], template: str,
                                    storage: str, libvirt_conn: libvirt.virConnect) -> None:
    r = run_cli(capsys, "vm", "create", "slow-1", "--template", template, "--timeout", "1")
    assert r.code == 5 and "did not happen within 1 s" in r.err
    assert "slow-1" not in [d.name() for d in libvirt_conn.listAllDomains()]
    pool = libvirt_conn.storagePoolLookupByName(storage + "-vms")
    pool.refresh(0)
    assert pool.listVolumes() == []
    r = run_cli(capsys, "vm", "create", "x-1", "--template", "nope")
    assert r.code == 2 and "no template named 'nope'" in r.err
    r = run_cli(capsys, "vm", "create", "Bad_Name", "--template", template)
    assert r.code == 2 and "invalid VM name" in r.err
    r = run_cli(capsys, "vm", "shutdown", "ghost-a", "ghost-b")
    assert r.code == 5
    assert "VM ghost-a: no VM named 'ghost-a'" in r.err and "VM ghost-b:" in r.err


def wait_ssh(address: str, timeout: float = 180) -> None:
    from glasspane.guests.readiness import ssh_banner, wait_for
    wait_for(f"SSH on {address}", lambda: ssh_banner(address), timeout, "test")


def test_lifecycle(capsys: pytest.CaptureFixture[str], template: str, ssh_key: Path,
                   tmp_path: Path) -> None:
    r = run_cli(capsys, "vm", "create", "life-1", "--template", template,
                "--ssh-key", f"{ssh_key}.pub")
    assert r.code == 0, r.err
    info = json.loads(run_cli(capsys, "vm", "info", "--json", "life-1").out)
    address = info["addresses"][0]
    assert info["power_state"] == "running" and info["disk"].endswith("life-1.qcow2")
    ssh(ssh_key, address, "timeout 120 sh -c 'until [ -e /var/lib/cloud/instance/boot-finished ];"
                          " do sleep 1; done'")

    assert "paused" in run_cli(capsys, "vm", "pause", "life-1").out
    assert "running" in run_cli(capsys, "vm", "resume", "life-1").out

    ssh(ssh_key, address, "echo before | sudo tee /etc/marker >/dev/null; sync")
    assert run_cli(capsys, "vm", "snapshot", "life-1", "clean").code == 0
    ssh(ssh_key, address, "echo after | sudo tee /etc/marker >/dev/null; sync")
    assert run_cli(capsys, "vm", "revert", "life-1", "clean").code == 0
    wait_ssh(address)
    assert ssh(ssh_key, address, "cat /etc/marker").strip() == "before"
    assert "clean" in json.loads(run_cli(capsys, "vm", "info", "--json", "life-1").out)[
        "snapshots"]

    r = run_cli(capsys, "vm", "export", "life-1", str(tmp_path / "running.qcow2"))
    assert r.code == 2 and "is running: its disk is in use" in r.err
    ssh(ssh_key, address, "nohup sleep 3600 >/dev/null 2>&1 & echo $! > /tmp/sleeper")
    assert "suspended" in run_cli(capsys, "vm", "suspend", "life-1").out
    listed = {v["name"]: v for v in json.loads(run_cli(capsys, "vm", "list", "--json").out)}
    assert listed["life-1"]["power_state"] == "suspended"
    assert "running" in run_cli(capsys, "vm", "resume", "life-1").out
    wait_ssh(address)
    # Resumed from its saved memory, not booted again: the process is still there.
    assert ssh(ssh_key, address, "kill -0 $(cat /tmp/sleeper) && echo alive").strip() == "alive"

    r = run_cli(capsys, "vm", "shutdown", "life-1", "--timeout", "120")
    assert r.code == 0 and r.out.strip() == "VM life-1: halted", r.out
    assert "running" in run_cli(capsys, "vm", "start", "life-1").out
    wait_ssh(address)
    assert ssh(ssh_key, address, "cat /etc/marker").strip() == "before"
    assert "systemd" in run_cli(capsys, "vm", "console", "life-1", "--log", "--lines",
                                 "400").out
    run_cli(capsys, "vm", "shutdown", "life-1", "--timeout", "120")
    exported = tmp_path / "life-1.qcow2"
    r = run_cli(capsys, "vm", "export", "life-1", str(exported), "--quiet")
    assert r.code == 0, r.err
    disk = json.loads(run_cli(capsys, "vm", "info", "--json", "life-1").out)["disk"]
    subprocess.run(["qemu-img", "compare", "-q", disk, str(exported)], check=True)
    assert run_cli(capsys, "vm", "destroy", "life-1").code == 0
    r = run_cli(capsys, "vm", "info", "life-1")
    assert r.code == 6 and "no VM named 'life-1'" in r.err


def test_count_in_parallel_and_ssh(capfd: pytest.CaptureFixture[str], template: str,
                                   ssh_key: Path) -> None:
    r = run_cli(capfd, "vm", "create", "multi", "--count", "2", "--template", template,
                "--ssh-key", f"{ssh_key}.pub", "--memory", "384")
    assert r.code == 0, r.err
    assert "created VM multi-1" in r.out and "created VM multi-2" in r.out
    names = {v["name"] for v in json.loads(run_cli(capfd, "vm", "list", "--json").out)}
    assert {"multi-1", "multi-2"} <= names
    r = run_cli(capfd, "vm", "ssh", "multi-2", "-i", str(ssh_key), "--", "hostname")
    assert r.code == 0 and r.out.strip().splitlines()[-1] == "multi-2", r.out + r.err
    r = run_cli(capfd, "vm", "ssh", "multi-2", "-i", str(ssh_key), "--", "exit", "3")
    assert r.code == 3
    r = run_cli(capfd, "vm", "destroy", "multi-1", "multi-2")
    assert r.code == 0 and "VM multi-1: destroyed" in r.out and "VM multi-2: destroyed" in r.out


def test_full_copy_disk(template: str, storage: str, settings: object,
                        libvirt_conn: libvirt.virConnect) -> None:
    from glasspane.hosts.registry import LOCAL
    from glasspane.hosts.service import connect
    from glasspane.images.compare import compare_images
    from glasspane.settings import Settings

    current = Settings.load()
    driver = connect(LOCAL, current)
    try:
        base = next(v for v in driver.list_volumes(storage) if v.name == "deb.qcow2")
        driver.ensure_storage(current.vm_storage)
        copy = driver.create_disk(current.vm_storage, "full.qcow2", base.path, 5 << 30,
                                  linked=False)
        assert copy.capacity == 5 << 30
        assert "backingStore" not in libvirt_conn.storageVolLookupByPath(copy.path).XMLDesc(0) \
            or "<backingStore/>" in libvirt_conn.storageVolLookupByPath(copy.path).XMLDesc(0)
        [result] = compare_images(base.path, copy.path)
        assert result.identical, result.describe()
        driver.delete_volume(current.vm_storage, "full.qcow2")
    finally:
        driver.close()
