"""A new VM that is not booting never hangs silently: a real guest whose kernel panics (a
template of an empty disk and a stock Debian kernel, under TCG) stops printing while its domain
runs; its creation fails with the console's last lines and what to do, and leaves nothing."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from glasspane.errors import HostError
from glasspane.hypervisors.libvirt_domain import serial_log
from glasspane.hypervisors.probe_kernel import Payload
from glasspane.settings import Settings
from glasspane.templates.service import import_template
from glasspane.vms.service import VmRequest, create_vm

pytestmark = pytest.mark.integration


@pytest.fixture
def mine(settings: Settings, storage: str) -> Settings:
    """The test's glasspane, its storage pools its own (removed afterwards)."""
    return Settings.load()


@pytest.fixture
def panicking(mine: Settings, tmp_path: Path, payload: Payload) -> str:
    """A template whose kernel prints its boot, finds no root filesystem and panics."""
    disk = tmp_path / "empty.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "64M"], check=True)
    import_template(mine, "panics", str(disk), kernel=str(payload.kernel))
    return "panics"


@pytest.fixture
def vm_name(libvirt_conn: libvirt.virConnect) -> Iterator[str]:
    name = f"silent-{uuid.uuid4().hex[:6]}"
    yield name
    for dom in libvirt_conn.listAllDomains():  # only if the test failed
        if dom.name() == name:
            if dom.isActive():
                dom.destroy()
            dom.undefine()
    Path(serial_log(name)).unlink(missing_ok=True)


def assert_nothing_left(conn: libvirt.virConnect, storage: str, name: str) -> None:
    assert name not in [d.name() for d in conn.listAllDomains()]
    pool = conn.storagePoolLookupByName(storage + "-vms")
    pool.refresh(0)
    assert pool.listVolumes() == []


def test_a_console_silent_while_running_fails_the_creation(
        mine: Settings, storage: str, panicking: str, vm_name: str,
        libvirt_conn: libvirt.virConnect, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("glasspane.guests.console.SILENCE_LIMIT", 10.0)
    with pytest.raises(HostError) as caught:
        create_vm(mine, VmRequest(vm_name, panicking), timeout=600)
    text = str(caught.value)
    assert f"VM {vm_name} is running but its serial console has not grown for 10 s" in text
    assert "the console's last lines:" in text and "Kernel panic" in text
    assert "\x1b" not in text and "\r" not in text
    # This machine's verdict is TCG: the hint points at the guest, not at KVM.
    assert "its kernel is not booting under TCG" in text
    assert_nothing_left(libvirt_conn, storage, vm_name)


def test_a_wait_that_times_out_shows_the_console(
        mine: Settings, storage: str, panicking: str, vm_name: str,
        libvirt_conn: libvirt.virConnect) -> None:
    with pytest.raises(HostError) as caught:
        create_vm(mine, VmRequest(vm_name, panicking), timeout=30)
    text = str(caught.value)
    assert f"an address for VM {vm_name} did not happen within 30 s" in text
    assert "the console's last lines:\n  | [" in text  # the kernel's own lines
    assert_nothing_left(libvirt_conn, storage, vm_name)


def test_under_kvm_the_hint_is_to_set_tcg(settings: Settings,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from glasspane.hosts.service import host_driver
    from glasspane.vms.service import _console_watch
    monkeypatch.setenv("GLASSPANE_ACCEL", "kvm")
    with host_driver(settings, "local") as driver:
        watch = _console_watch(driver, "any", "local")
    assert watch is not None and watch.log == Path(serial_log("any"))
    assert "set GLASSPANE_ACCEL=tcg and create it again" in watch.hint
    assert "set by GLASSPANE_ACCEL=kvm" in watch.hint
