"""Both drivers keep one contract: the same fault is the same error class, with a message
naming the VM and the host, whichever hypervisor is behind the host; power states are
PowerState values; what a driver declares it implements, and what it does not declare is
refused by `require` alike.

libvirt runs against the real local libvirtd, with a tiny domain of the test's own defined
directly (never started: the faults need no guest); XenAPI against the loopback XAPI of
tests/xapi, with its small pool (VM db-1 halted, web-1 running, template debian-12)."""

from __future__ import annotations

import inspect
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest

from glasspane import hypervisors
from glasspane.enums import PowerState, VmAction
from glasspane.errors import CapabilityMissing, Conflict, HostUnreachable, NotFound, UsageError
from glasspane.hypervisors.base import VmSpec
from glasspane.hypervisors.capabilities import (
    PROTOCOLS,
    Capability,
    Driver,
    require,
    supports,
)
from tests.hypervisors.conftest import URI
from tests.xapi.server import Xapi, small_pool, start

POOL_PASSWORD = "contract-pw"


@dataclass
class Host:
    """A driver connected to a host with one halted VM of the test's, `vm`."""

    driver: Driver
    vm: str
    template: str  # what a new VM is made from there


@pytest.fixture(params=["libvirt", "xenapi"])
def host(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Host]:
    if request.param == "libvirt":
        yield from _libvirt_host(tmp_path)
    else:
        yield from _xapi_host()


def _libvirt_host(tmp_path: Path) -> Iterator[Host]:
    name = f"gp-contract-{uuid.uuid4().hex[:8]}"
    disk = tmp_path / "disk.qcow2"  # internal snapshots of a halted domain need one
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1M"], check=True)
    conn = libvirt.open(URI)
    dom = conn.defineXML(
        f"<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory>"
        "<vcpu>1</vcpu><os><type arch='x86_64'>hvm</type></os><devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        f"<source file='{disk}'/><target dev='vda' bus='virtio'/></disk></devices></domain>")
    driver = hypervisors.connect("kvm-contract", URI, "libvirt")
    try:
        yield Host(driver, name, str(disk))
    finally:
        driver.close()
        for snapshot in dom.listAllSnapshots(0):
            snapshot.delete(0)
        dom.undefineFlags(libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA)
        conn.close()


def _xapi_host() -> Iterator[Host]:
    running = start(Xapi(password=POOL_PASSWORD))
    small_pool(running.xapi)
    driver = hypervisors.connect("xcp-contract", running.url, "xenapi", user="root",
                                 password=lambda: POOL_PASSWORD)
    try:
        yield Host(driver, "db-1", "debian-12")
    finally:
        driver.close()
        running.stop()


def names_vm_and_host(exc: pytest.ExceptionInfo[Exception], vm: str, host: Host) -> None:
    text = str(exc.value)
    assert vm in text and host.driver.name in text, text


# -- the faults ----------------------------------------------------------------------------------
def test_a_missing_vm_is_not_found(host: Host) -> None:
    ghost = f"ghost-{uuid.uuid4().hex[:6]}"
    power = require(host.driver, Capability.POWER, "the test")
    snapshots = require(host.driver, Capability.SNAPSHOTS, "the test")
    for call in (lambda: host.driver.vm_state(ghost),
                 lambda: host.driver.vm_addresses(ghost),
                 lambda: power.vm_action(ghost, VmAction.START),
                 lambda: snapshots.snapshot_vm(ghost, "s"),
                 lambda: snapshots.revert_vm(ghost, "s"),
                 lambda: snapshots.list_snapshots(ghost)):
        with pytest.raises(NotFound) as exc:
            call()
        assert type(exc.value) is NotFound
        names_vm_and_host(exc, ghost, host)
        assert f"no VM named {ghost!r} on host {host.driver.name}" in str(exc.value)


def test_a_missing_snapshot_is_not_found(host: Host) -> None:
    snapshots = require(host.driver, Capability.SNAPSHOTS, "the test")
    with pytest.raises(NotFound) as exc:
        snapshots.revert_vm(host.vm, "never-taken")
    assert type(exc.value) is NotFound
    names_vm_and_host(exc, host.vm, host)
    assert "has no snapshot named 'never-taken'" in str(exc.value)


def test_a_snapshot_name_in_use_is_a_conflict(host: Host) -> None:
    snapshots = require(host.driver, Capability.SNAPSHOTS, "the test")
    snapshots.snapshot_vm(host.vm, "before")
    with pytest.raises(Conflict) as exc:
        snapshots.snapshot_vm(host.vm, "before")
    assert type(exc.value) is Conflict
    names_vm_and_host(exc, host.vm, host)
    assert "already has a snapshot named 'before'" in str(exc.value)
    assert snapshots.list_snapshots(host.vm) == ["before"], "the first one is kept, alone"


def test_a_vm_name_in_use_is_a_conflict(host: Host) -> None:
    before = [v.name for v in host.driver.list_vms()]
    with pytest.raises(Conflict) as exc:
        if supports(host.driver, Capability.PROVISIONING):
            require(host.driver, Capability.PROVISIONING, "the test").create_vm(
                VmSpec(host.vm, 1, 64, host.template, None, None, None, None))
        else:
            require(host.driver, Capability.HOST_TEMPLATES, "the test").provision_vm(
                host.template, host.vm, 1, 64, None, "/nonexistent-seed.iso")
    assert type(exc.value) is Conflict
    names_vm_and_host(exc, host.vm, host)
    assert f"a VM named {host.vm!r} already exists on host {host.driver.name}" in \
        str(exc.value)
    assert [v.name for v in host.driver.list_vms()] == before, "nothing was made"


@pytest.mark.parametrize("action", [VmAction.PAUSE, VmAction.SHUTDOWN, VmAction.REBOOT,
                                    VmAction.RESUME, VmAction.SUSPEND, VmAction.POWEROFF])
def test_an_action_in_the_wrong_state_is_a_conflict(host: Host, action: VmAction) -> None:
    power = require(host.driver, Capability.POWER, "the test")
    with pytest.raises(Conflict) as exc:
        power.vm_action(host.vm, action)
    assert type(exc.value) is Conflict
    names_vm_and_host(exc, host.vm, host)
    assert "the VM is halted, it must be " in str(exc.value)  # the states VM_ACTION_STATES has
    assert host.driver.vm_state(host.vm) == PowerState.HALTED


def test_an_unknown_action_is_a_usage_error(host: Host) -> None:
    power = require(host.driver, Capability.POWER, "the test")
    with pytest.raises(UsageError, match="unknown VM action 'explode'"):
        power.vm_action(host.vm, "explode")


def test_resources_of_a_missing_vm(host: Host) -> None:
    """Where a driver declares resources, a missing VM is NotFound like everywhere else;
    where it does not, require says so."""
    if not supports(host.driver, Capability.RESOURCES):
        with pytest.raises(CapabilityMissing):
            require(host.driver, Capability.RESOURCES, "the test")
        return
    with pytest.raises(NotFound) as exc:
        require(host.driver, Capability.RESOURCES, "the test").set_resources("ghost", 2, None)
    names_vm_and_host(exc, "ghost", host)


@pytest.mark.parametrize("kind", ["libvirt", "xenapi"])
def test_an_unreachable_host(kind: str) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    uri = f"qemu+tcp://127.0.0.1:{port}/system" if kind == "libvirt" else \
        f"http://127.0.0.1:{port}/"
    with pytest.raises(HostUnreachable) as exc:
        hypervisors.connect("far-away", uri, kind, user="root", password=lambda: "pw")
    assert type(exc.value) is HostUnreachable
    assert "host far-away:" in str(exc.value) and str(port) in str(exc.value)


# -- states and capabilities ---------------------------------------------------------------------
def test_power_states_are_power_state_values(host: Host) -> None:
    state = host.driver.vm_state(host.vm)
    assert type(state) is PowerState and state == PowerState.HALTED
    [summary] = [v for v in host.driver.list_vms() if v.name == host.vm]
    assert type(summary.power_state) is PowerState


def test_what_is_not_declared_is_refused_alike(host: Host) -> None:
    declared = host.driver.capabilities
    assert Capability.INVENTORY in declared and Capability.POWER in declared
    assert declared == hypervisors.declared(host.driver.kind)
    missing = [c for c in Capability if c not in declared]
    # The next ones: declared as Protocols, claimed by no driver yet.
    assert {Capability.METRICS, Capability.MIGRATION, Capability.BACKUP} <= set(missing)
    for capability in missing:
        with pytest.raises(CapabilityMissing) as exc:
            require(host.driver, capability, "the test")
        assert isinstance(exc.value, Conflict)  # 409 in the API, exit 2 in the CLI
        text = str(exc.value)
        assert f"host {host.driver.name} ({host.driver.kind}) does not support " \
               f"{capability.label}" in text, text


def test_what_is_declared_is_implemented(host: Host) -> None:
    """At run time what mypy checks statically (the `_declared` functions in each driver):
    every method of each declared capability's Protocol, with its parameters."""
    for capability in host.driver.capabilities:
        protocol = PROTOCOLS[capability]
        for name, member in inspect.getmembers(protocol, inspect.isfunction):
            if name.startswith("_"):
                continue
            implemented = getattr(type(host.driver), name, None)
            assert callable(implemented), f"{host.driver.kind}: {capability} needs {name}"
            wanted = list(inspect.signature(member).parameters)
            assert list(inspect.signature(implemented).parameters)[:len(wanted)] == wanted, \
                f"{host.driver.kind}.{name}"
