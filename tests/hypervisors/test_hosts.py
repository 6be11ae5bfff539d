"""Hosts against a real libvirtd: info, add, list, remove, and the errors users meet."""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Iterator

import libvirt
import pytest

from glasspane.settings import Settings
from tests.cli.runner import run_cli

pytestmark = pytest.mark.integration

DOMAIN_XML = """<domain type='qemu'>
  <name>{name}</name><uuid>{uuid}</uuid><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type></os>
</domain>"""


@pytest.fixture
def defined_vm(libvirt_conn: libvirt.virConnect) -> Iterator[str]:
    """A VM defined (not started) behind glasspane's back."""
    name = f"gp-test-{uuid.uuid4().hex[:8]}"
    dom = libvirt_conn.defineXML(DOMAIN_XML.format(name=name, uuid=uuid.uuid4()))
    yield name
    dom.undefine()


def test_host_info_of_the_local_host(capsys: pytest.CaptureFixture[str], settings: Settings,
                                     defined_vm: str) -> None:
    r = run_cli(capsys, "host", "info", "--json")
    assert r.code == 0, r.err
    info = json.loads(r.out)
    assert info["name"] == "local" and info["uri"] == "qemu:///system"
    assert info["cpus"] == os.cpu_count()
    assert info["memory_mib"] > 0 and 0 < info["free_memory_mib"] <= info["memory_mib"]
    assert info["hypervisor"].startswith("QEMU ")
    assert info["acceleration"]["kind"] in ("kvm", "tcg") and info["acceleration"]["reason"]
    assert "default" in [n["name"] for n in info["networks"]]  # libvirt's NAT network
    assert {"name": defined_vm, "power_state": "halted"}.items() <= next(
        vm for vm in info["vms"] if vm["name"] == defined_vm).items()
    r = run_cli(capsys, "host", "info")
    assert "acceleration" in r.out and defined_vm in r.out


def test_add_list_remove(capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    r = run_cli(capsys, "host", "add", "kvm2", "qemu:///system")
    assert r.code == 0, r.err
    # In the inventory database (owner-only), not a file of the configuration directory.
    assert not (settings.config_dir / "hosts.json").exists()
    assert stat.S_IMODE((settings.data_dir / "glasspane.db").stat().st_mode) == 0o600
    r = run_cli(capsys, "host", "list", "--json")
    assert [h["name"] for h in json.loads(r.out)] == ["local", "kvm2"]
    assert run_cli(capsys, "host", "info", "kvm2", "--json").code == 0
    r = run_cli(capsys, "host", "add", "kvm2", "qemu:///system")
    assert r.code == 2 and "already registered" in r.err
    assert run_cli(capsys, "host", "remove", "kvm2").code == 0
    r = run_cli(capsys, "host", "list")
    assert "kvm2" not in r.out and "local" in r.out


def test_unreachable_host_is_not_registered(capsys: pytest.CaptureFixture[str],
                                            settings: Settings) -> None:
    uri = "qemu+ssh://nobody@127.0.0.1:1/system"  # nothing listens on port 1
    r = run_cli(capsys, "host", "add", "ghost", uri)
    assert r.code == 5
    assert "host ghost: cannot connect to" in r.err and "Traceback" not in r.err
    assert "ghost" not in run_cli(capsys, "host", "list").out
    assert run_cli(capsys, "host", "add", "--no-check", "ghost", uri).code == 0
    r = run_cli(capsys, "host", "info", "ghost")
    assert r.code == 5 and "host ghost" in r.err


def test_naming_errors(capsys: pytest.CaptureFixture[str], settings: Settings) -> None:
    r = run_cli(capsys, "host", "info", "nope")
    assert r.code == 6 and "no host named 'nope'" in r.err
    r = run_cli(capsys, "host", "remove", "local")
    assert r.code == 2 and "built in" in r.err
    r = run_cli(capsys, "host", "add", "Bad Name", "qemu:///system")
    assert r.code == 2 and "invalid host name" in r.err
