"""What a VM's consoles need in its definition: a pty serial port (its output still in the
console log), a VNC screen on a unix socket and a video card; new VMs have them, VMs defined
before gain them at their next definition change."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from xml.etree import ElementTree as ET

import libvirt
import pytest

from glasspane.hypervisors.domainxml import Domain, Graphics, Serial, Video
from glasspane.hypervisors.libvirt_domain import serial_log, with_consoles
from glasspane.hypervisors.libvirt_driver import LibvirtDriver
from tests.hypervisors.conftest import URI

# A VM as glasspane defined them before: its serial port writes only to the log file.
OLD = """<domain type='qemu'>
  <name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <serial type='file'><source path='{log}'/><target port='0'/></serial>
  </devices>
</domain>"""

# A foreign VM with a screen of its owner's choosing and no video card.
FOREIGN = """<domain type='kvm'><name>theirs</name><memory unit='MiB'>64</memory><vcpu>1</vcpu>
  <os><type>hvm</type></os>
  <devices><graphics type='spice' port='5930'><listen type='address' address='10.0.0.5'/>
  </graphics><console type='pty'/></devices></domain>"""


def test_an_old_vm_gains_a_typable_serial_port_a_screen_and_a_video_card() -> None:
    domain = Domain.from_xml(OLD.format(name="old", log=serial_log("old")))
    assert with_consoles(domain)
    root = ET.fromstring(domain.to_xml())
    serial = root.find("devices/serial")
    assert serial is not None
    assert serial.get("type") == "pty" and serial.find("source") is None
    assert serial.find("log").get("file") == serial_log("old")  # the history stays
    graphics = root.find("devices/graphics")
    assert graphics is not None and graphics.get("type") == "vnc"
    assert graphics.find("listen").attrib == {"type": "socket"}  # no address, no port
    assert root.find("devices/video/model").get("type") == "virtio"
    # Read back, it has them: nothing more to add.
    assert not with_consoles(Domain.from_xml(domain.to_xml()))


def test_a_foreign_vms_screen_stays_as_its_owner_made_it() -> None:
    domain = Domain.from_xml(FOREIGN)
    assert with_consoles(domain)
    kinds = [type(d) for d in domain.devices]
    assert kinds.count(Graphics) == 1 and Video in kinds and Serial in kinds
    screen = next(d for d in domain.devices if isinstance(d, Graphics))
    assert (screen.kind, screen.listen) == ("spice", "10.0.0.5")
    assert 'port="5930"' in domain.to_xml()


@pytest.fixture
def old_vm(libvirt_conn: libvirt.virConnect) -> Iterator[str]:
    name = f"gp-oldvm-{uuid.uuid4().hex[:8]}"
    libvirt_conn.defineXML(OLD.format(name=name, log=f"/tmp/{name}.log"))
    yield name
    dom = libvirt_conn.lookupByName(name)
    if dom.isActive():
        dom.destroy()
    dom.undefine()


@pytest.mark.integration
def test_a_definition_change_gives_an_existing_vm_its_consoles(
        libvirt_conn: libvirt.virConnect, old_vm: str) -> None:
    driver = LibvirtDriver("local", URI)
    try:
        driver.set_resources(old_vm, 2, None)
    finally:
        driver.close()
    root = ET.fromstring(libvirt_conn.lookupByName(old_vm).XMLDesc(
        libvirt.VIR_DOMAIN_XML_INACTIVE))
    assert root.findtext("vcpu") == "2"
    assert root.find("devices/graphics[@type='vnc']/listen[@type='socket']") is not None
    assert root.find("devices/video") is not None
    # Not glasspane's log path: a port writing to another file is its owner's, kept.
    assert root.find("devices/serial").get("type") == "file"


def test_a_remote_screen_is_reached_through_ssh_without_a_shell() -> None:
    from glasspane.hypervisors.libvirt_console import ssh_target, vnc_address
    assert ssh_target("qemu+ssh://admin@kvm2.lab:2222/system") == \
        ["-p", "2222", "-l", "admin", "--", "kvm2.lab"]
    assert ssh_target("qemu+ssh://[fd00::5]/system?mode=direct") == ["--", "fd00::5"]
    running = """<domain><devices><graphics type='vnc' socket='/var/lib/libvirt/qemu/\
domain-3-web/vnc.sock'><listen type='socket' socket='/var/lib/libvirt/qemu/domain-3-web/\
vnc.sock'/></graphics></devices></domain>"""
    assert vnc_address(running, "kvm2", "web") == "/var/lib/libvirt/qemu/domain-3-web/vnc.sock"
    on_port = "<domain><devices><graphics type='vnc' port='5901' listen='127.0.0.1'/>" \
              "</devices></domain>"
    assert vnc_address(on_port, "kvm2", "web") == "127.0.0.1:5901"
    with pytest.raises(Exception, match="VM web on host kvm2 has no VNC screen"):
        vnc_address("<domain><devices/></domain>", "kvm2", "web")
