"""The domain XML model: glasspane's VM domain as it was, round trips, a foreign domain
changed without losing what the model does not describe, hostile values, and libvirtd
reading back what the builder defines."""

from __future__ import annotations

import copy
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import libvirt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from glasspane.errors import Conflict, HostError, NotFound, UsageError
from glasspane.hypervisors.base import VmSpec
from glasspane.hypervisors.domainxml import (
    DEVICE_TYPES,
    METADATA_NS,
    Boot,
    Controller,
    Disk,
    Domain,
    Graphics,
    Metadata,
    Nic,
    Rng,
    Serial,
    Video,
)
from glasspane.hypervisors.libvirt_domain import (
    OTHER_PCIE_DEVICES,
    SPARE_ROOT_PORTS,
    domain_xml,
    glasspane_domain,
    parse_metadata,
    serial_log,
)

IMAGES = "/var/lib/libvirt/images"
SPEC = VmSpec("deb-1", 2, 1024, f"{IMAGES}/gp-vms/deb-1.qcow2",
              f"{IMAGES}/gp-vms/deb-1-seed.iso", f"{IMAGES}/gp/vmlinuz",
              f"{IMAGES}/gp/initrd.img", "root=/dev/vda1 console=ttyS0",
              template="debian-12", labels={"team": "web", "tier": "a&b"})

# What the f-string this model replaced wrote for SPEC under KVM (recorded from it), with what
# whole machines added since: an empty CD drive for ISOs, a virtio-scsi controller for SCSI
# disks and spare PCIe root ports to hot-plug into.
TODAYS_XML = f"""<domain type="kvm">
  <name>deb-1</name>
  <metadata><glasspane:vm xmlns:glasspane="{METADATA_NS}"><glasspane:template>debian-12\
</glasspane:template><glasspane:label name="team">web</glasspane:label><glasspane:label \
name="tier">a&amp;b</glasspane:label></glasspane:vm></metadata>
  <memory unit='MiB'>1024</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type><kernel>{IMAGES}/gp/vmlinuz</kernel>\
<initrd>{IMAGES}/gp/initrd.img</initrd><cmdline>root=/dev/vda1 console=ttyS0</cmdline></os>
  <features><acpi/><apic/></features>
  <cpu mode='host-passthrough'/>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file="{IMAGES}/gp-vms/deb-1.qcow2"/><target dev='vda' bus='virtio'/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><source \
file="{IMAGES}/gp-vms/deb-1-seed.iso"/><target dev='sda' bus='sata'/><readonly/></disk>
    <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sdb' \
bus='sata'/><readonly/></disk>
    <interface type='network'><source network="default"/>
      <model type='virtio'/></interface>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <controller type='scsi' model='virtio-scsi'/>
    <controller type='pci' index='0' model='pcie-root'/>
    <controller type='pci' model='pcie-root-port'/><controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/><controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/><controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/><controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/><controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/><controller type='pci' model='pcie-root-port'/>
    <controller type='pci' model='pcie-root-port'/>
    <serial type='pty'><target port='0'/><log file="/var/log/libvirt/qemu/deb-1-serial.log"/>\
</serial>
    <graphics type='vnc'><listen type='socket'/></graphics>
    <video><model type='virtio'/></video>
  </devices>
</domain>"""

# A domain glasspane did not make, as virt-install and libvirt leave one: others' metadata,
# a block disk, a bridge, addresses, controllers, a seclabel, vCPUs below their maximum.
FOREIGN_XML = """<domain type='kvm' id='7'>
  <name>web-legacy</name>
  <uuid>0b5a3ac5-4c5e-4b5c-9a57-7c1e0b1c2d3e</uuid>
  <metadata>
    <libosinfo:libosinfo xmlns:libosinfo="http://libosinfo.org/xmlns/libvirt/domain/1.0">
      <libosinfo:os id="http://debian.org/debian/12"/>
    </libosinfo:libosinfo>
  </metadata>
  <memory unit='GiB'>4</memory>
  <currentMemory unit='GiB'>2</currentMemory>
  <vcpu placement='static' current='2'>4</vcpu>
  <iothreads>1</iothreads>
  <os firmware='efi'>
    <type arch='x86_64' machine='pc-q35-8.2'>hvm</type>
    <loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE_4M.fd</loader>
    <boot dev='hd'/>
    <boot dev='cdrom'/>
  </os>
  <features><acpi/><apic/><vmport state='off'/></features>
  <cpu mode='host-model' check='partial'><topology sockets='1' dies='1' cores='4' \
threads='1'/></cpu>
  <clock offset='utc'><timer name='rtc' tickpolicy='catchup'/></clock>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <pm><suspend-to-mem enabled='no'/></pm>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='block' device='disk'>
      <driver name='qemu' type='raw' cache='none' io='native'/>
      <source dev='/dev/vg0/web'/>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
      <address type='pci' domain='0x0000' bus='0x04' slot='0x00' function='0x0'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='rbd' name='pool/img'><host name='ceph1' port='6789'/></source>
      <target dev='vdb' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='/srv/iso/debian.iso'/>
      <target dev='sda' bus='sata'/>
      <readonly/>
      <address type='drive' controller='0' bus='0' target='0' unit='0'/>
    </disk>
    <controller type='usb' index='0' model='qemu-xhci' ports='15'/>
    <interface type='bridge'>
      <mac address='52:54:00:12:34:56'/>
      <source bridge='br0'/>
      <model type='virtio'/>
      <filterref filter='clean-traffic'/>
    </interface>
    <serial type='pty'><target type='isa-serial' port='0'><model name='isa-serial'/>\
</target></serial>
    <console type='pty'><target type='serial' port='0'/></console>
    <channel type='unix'><target type='virtio' name='org.qemu.guest_agent.0'/></channel>
    <graphics type='spice' autoport='yes'><listen type='address'/><image \
compression='off'/></graphics>
    <video><model type='qxl' ram='65536' heads='1'/></video>
    <memballoon model='virtio'/>
    <rng model='virtio'><backend model='egd' type='tcp'><source mode='connect' \
host='192.0.2.1' service='1234'/><protocol type='raw'/></backend></rng>
  </devices>
  <seclabel type='dynamic' model='apparmor' relabel='yes'/>
</domain>"""


def shape(el: ET.Element) -> Any:
    """An element as comparable data: tag (with its namespace), attributes, text, children
    in order; whitespace between elements ignored."""
    return (el.tag, sorted(el.attrib.items()), (el.text or "").strip(),
            [shape(c) for c in el])


def children(xml: str, skip: tuple[str, ...] = ()) -> list[Any]:
    return [shape(c) for c in ET.fromstring(xml) if c.tag not in skip]


# ---- glasspane's VMs -------------------------------------------------------------------


def test_a_vms_domain_is_the_one_glasspane_made_before() -> None:
    assert ET.canonicalize(domain_xml(SPEC, "kvm"), strip_text=True) == \
        ET.canonicalize(TODAYS_XML, strip_text=True)


@pytest.mark.parametrize("accel", ["kvm", "tcg"])
def test_a_vms_domain_has_what_glasspane_relies_on(accel: str) -> None:
    root = ET.fromstring(domain_xml(SPEC, accel))
    assert root.get("type") == ("kvm" if accel == "kvm" else "qemu")
    assert (root.find("cpu") is not None) == (accel == "kvm")
    assert root.findtext("name") == "deb-1"
    assert root.findtext("vcpu") == "2"
    assert (root.find("memory").get("unit"), root.findtext("memory")) == ("MiB", "1024")
    assert [root.findtext(f"os/{k}") for k in ("kernel", "initrd", "cmdline")] == \
        [SPEC.kernel, SPEC.initrd, SPEC.cmdline]
    disk, seed, cd = root.findall("devices/disk")
    assert (cd.get("device"), cd.find("source")) == ("cdrom", None)  # empty, for ISOs
    assert (disk.find("source").get("file"), disk.find("target").get("dev"),
            disk.find("driver").get("type")) == (SPEC.disk, "vda", "qcow2")
    assert (seed.get("device"), seed.find("source").get("file"),
            seed.find("readonly") is not None) == ("cdrom", SPEC.seed, True)
    assert root.find("devices/interface/source").get("network") == "default"
    serial = root.find("devices/serial")
    assert (serial.get("type"), serial.find("log").get("file")) == ("pty", serial_log("deb-1"))
    graphics = root.find("devices/graphics")
    assert (graphics.get("type"), graphics.find("listen").attrib) == ("vnc", {"type": "socket"})
    assert root.find("devices/video") is not None
    assert root.find("devices/rng/backend").text == "/dev/urandom"
    assert parse_metadata(ET.tostring(root.find(f"metadata/{{{METADATA_NS}}}vm"),
                                      encoding="unicode")) == ("debian-12", SPEC.labels)


def test_a_vm_without_seed_or_kernel_boots_its_disk() -> None:
    spec = VmSpec("plain", 1, 512, "/d.qcow2", None, None, None, None)
    root = ET.fromstring(domain_xml(spec, "tcg"))
    assert [d.get("device") for d in root.findall("devices/disk")] == ["disk", "cdrom"]
    assert [c.tag for c in root.find("os")] == ["type"]
    assert root.find("metadata") is not None  # an empty glasspane element marks it ours


@pytest.mark.parametrize("accel", ["kvm", "tcg"])
@pytest.mark.parametrize("seed", [True, False])
def test_built_written_and_read_back_is_the_same_model(accel: str, seed: bool) -> None:
    spec = VmSpec("deb-1", 2, 1024, SPEC.disk, SPEC.seed if seed else None, SPEC.kernel,
                  None, SPEC.cmdline, template="t", labels={"k": "v"})
    built = glasspane_domain(spec, accel)
    assert Domain.from_xml(built.to_xml()) == built


def test_a_devices_model_with_every_kind_reads_back() -> None:
    built = Domain(name="all", vcpus=1, memory_mib=64,
                   boot=Boot(devices=["hd", "cdrom"], loader="/usr/share/OVMF/CODE.fd",
                             nvram="/p/all-nvram.fd", nvram_template="/usr/share/OVMF/VARS.fd"),
                   devices=[Disk(path="/a.qcow2", target="vda"),
                            Disk(path=None, target="sda", bus="sata", format=None,
                                 device="cdrom", readonly=True),
                            Nic(network="default", mac="52:54:00:00:00:01"),
                            Serial(kind="pty", log="/var/log/x.log"),
                            Graphics(listen=None, socket="/run/gp/vnc.sock"),
                            Graphics(kind="vnc", listen="127.0.0.1"), Video(), Rng(),
                            Controller(kind="scsi", model="virtio-scsi"),
                            Controller(model="pcie-root-port", index=3)])
    # A device kind added to DEVICE_TYPES joins this test too.
    assert {type(d) for d in built.devices} == set(DEVICE_TYPES)
    back = Domain.from_xml(built.to_xml())
    assert back == built
    assert back.to_xml() == built.to_xml()


# ---- a domain glasspane did not make --------------------------------------------------


def test_a_foreign_domain_reads_as_what_it_is() -> None:
    dom = Domain.from_xml(FOREIGN_XML)
    assert (dom.name, dom.vcpus, dom.memory_mib, dom.cpu_mode) == \
        ("web-legacy", 2, 4096, "host-model")
    assert dom.boot.devices == ["hd", "cdrom"] and dom.boot.firmware == "efi"
    assert [(d.target, d.source_type, d.path) for d in dom.disks] == \
        [("vda", "block", "/dev/vg0/web"), ("vdb", "network", None),
         ("sda", "file", "/srv/iso/debian.iso")]
    assert [(n.kind, n.bridge, n.mac) for n in dom.nics] == \
        [("bridge", "br0", "52:54:00:12:34:56")]
    assert dom.metadata is None  # others' metadata is not glasspane's
    assert dom.devices[-1] == Rng(model="virtio", source=None)


def test_a_foreign_domain_written_unchanged_is_unchanged() -> None:
    assert children(Domain.from_xml(FOREIGN_XML).to_xml()) == children(FOREIGN_XML)


def test_changing_vcpus_of_a_foreign_domain_keeps_everything_else() -> None:
    dom = Domain.from_xml(FOREIGN_XML)
    dom.set_vcpus(3)
    out = dom.to_xml()
    assert children(out, skip=("vcpu", "cpu")) == children(FOREIGN_XML, skip=("vcpu", "cpu"))
    root = ET.fromstring(out)
    assert (root.findtext("vcpu"), root.find("vcpu").get("current")) == ("3", None)
    # A topology of 4 cores would make libvirt refuse 3 vCPUs; the mode and check stay.
    assert shape(root.find("cpu")) == ("cpu", [("check", "partial"), ("mode", "host-model")],
                                       "", [])
    assert Domain.from_xml(out).vcpus == 3


def test_changing_memory_sets_the_current_amount_too() -> None:
    dom = Domain.from_xml(FOREIGN_XML)
    dom.set_memory(6144)
    root = ET.fromstring(dom.to_xml())
    assert [(root.find(t).get("unit"), root.findtext(t)) for t in ("memory", "currentMemory")] \
        == [("MiB", "6144"), ("MiB", "6144")]
    assert children(dom.to_xml(), skip=("memory", "currentMemory")) == \
        children(FOREIGN_XML, skip=("memory", "currentMemory"))


def test_devices_added_and_removed_on_a_foreign_domain() -> None:
    dom = Domain.from_xml(FOREIGN_XML)
    added = dom.add_disk(Disk(path="/srv/data.qcow2"))
    assert added.target == "vdc"  # vda and vdb are taken
    assert dom.add_disk(Disk(path="/srv/x.iso", bus="sata", device="cdrom", format="raw",
                             readonly=True)).target == "sdb"
    dom.remove_nic("52:54:00:12:34:56")
    dom.add_nic(Nic(network="default", mac="52:54:00:AB:CD:EF"))
    dom.change_media("sda", None)
    out = dom.to_xml()
    root = ET.fromstring(out)
    disks = root.findall("devices/disk")
    assert [d.find("target").get("dev") for d in disks] == ["vda", "vdb", "sda", "vdc", "sdb"]
    # The drive is empty, and still has its address; the block disk keeps its tuning.
    assert disks[2].find("source") is None and disks[2].find("address") is not None
    assert disks[0].find("driver").get("cache") == "none"
    assert disks[0].find("boot").get("order") == "1"
    assert [i.find("source").get("network") for i in root.findall("devices/interface")] \
        == ["default"]
    skip = ("disk", "interface")
    assert [c for c in children(out)[-2][3] if c[0] not in skip] == \
        [c for c in children(FOREIGN_XML)[-2][3] if c[0] not in skip]
    back = Domain.from_xml(out)
    assert back.disks == dom.disks and back.nics == dom.nics


def test_a_cd_gets_new_media() -> None:
    dom = Domain.from_xml(FOREIGN_XML)
    dom.change_media("sda", "/srv/iso/new & <improved>.iso")
    dom.change_media("sda", None)
    dom.change_media("sda", "/srv/iso/new & <improved>.iso")
    root = ET.fromstring(dom.to_xml())
    cd = root.findall("devices/disk")[2]
    assert cd.find("source").get("file") == "/srv/iso/new & <improved>.iso"
    assert len(cd.findall("source")) == 1


def test_a_copied_device_is_written_as_a_device_of_its_own() -> None:
    import dataclasses

    dom = Domain.from_xml(FOREIGN_XML)
    cd = dom.disks[2]
    dom.add_disk(dataclasses.replace(cd, target="sdb", path="/srv/b.iso"))
    root = ET.fromstring(dom.to_xml())
    assert [(d.find("target").get("dev"), d.find("source").get("file"))
            for d in root.findall("devices/disk")[2:]] == \
        [("sda", "/srv/iso/debian.iso"), ("sdb", "/srv/b.iso")]


def test_wrong_changes_are_refused_with_what_to_do() -> None:
    dom = Domain.from_xml(FOREIGN_XML)
    with pytest.raises(Conflict, match="already has a disk vda"):
        dom.add_disk(Disk(path="/x", target="vda"))
    with pytest.raises(NotFound, match=r"no disk vdz.*vda, vdb, sda"):
        dom.remove_disk("vdz")
    with pytest.raises(Conflict, match=r"disk vda .* is a disk, not a removable drive"):
        dom.change_media("vda", "/x.iso")
    with pytest.raises(NotFound, match="no interface with MAC 52:54:00:00:00:00"):
        dom.remove_nic("52:54:00:00:00:00")
    with pytest.raises(Conflict, match="already has an interface with MAC"):
        dom.add_nic(Nic(network="default", mac="52:54:00:12:34:56"))
    with pytest.raises(UsageError, match="the disk's path holds a control character"):
        dom.add_disk(Disk(path="/srv/\x00"))
    with pytest.raises(UsageError, match="the CD's image path holds a control character"):
        dom.change_media("sda", "/srv/\x1b.iso")
    with pytest.raises(UsageError, match="is not a MAC address"):
        dom.add_nic(Nic(network="default", mac="52:54:00:12:34:56'/><x a='"))
    for bad in (0, -1):
        with pytest.raises(UsageError, match="at least one vCPU"):
            dom.set_vcpus(bad)
        with pytest.raises(UsageError, match="some memory"):
            dom.set_memory(bad)
    assert children(dom.to_xml()) == children(FOREIGN_XML)  # nothing half-done


# ---- hostile values ----------------------------------------------------------------------


HOSTILE = ["a'b\"c", "x<y>&z;", "line\nbreak", "tab\there", "&amp;", "]]>", "'/><disk/><x a='",
           "</name><name>evil", "é ✓ 🖥"]


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_come_back_as_written_and_nothing_more(value: str) -> None:
    spec = VmSpec(value, 1, 64, f"/imgs/{value}.qcow2", f"/imgs/{value}.iso", None, None,
                  f"console=ttyS0 {value}", network=value, template=value,
                  labels={value: value, "k": value})
    built = glasspane_domain(spec, "tcg")
    xml = built.to_xml()
    root = ET.fromstring(xml)
    assert len(root.findall("name")) == 1 and len(root.findall("devices/disk")) == 3
    # Disk, seed, CD drive, NIC, serial, RNG, the SCSI controller and the PCIe root, a screen
    # and its video card, and a root port for its disk, its NIC and the other PCIe devices,
    # with the spare ones.
    assert len(root.findall("devices/*")) == 6 + 2 + 2 + 2 + OTHER_PCIE_DEVICES + \
        SPARE_ROOT_PORTS
    back = Domain.from_xml(xml)
    assert back == built
    assert (back.name, back.disks[0].path, back.nics[0].network, back.boot.cmdline) == \
        (value, f"/imgs/{value}.qcow2", value, f"console=ttyS0 {value}")
    assert back.metadata == Metadata(value, {value: value, "k": value})


XML_TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc"),
                                 exclude_characters="\ufffe\uffff") |
                   st.sampled_from("\n\t<>&'\""), min_size=1, max_size=30)


@settings(max_examples=150, deadline=None)
@given(name=XML_TEXT, path=XML_TEXT, label=XML_TEXT, value=XML_TEXT)
def test_any_text_xml_carries_reads_back_as_written(name: str, path: str, label: str,
                                                    value: str) -> None:
    built = Domain(name=name, vcpus=1, memory_mib=64, metadata=Metadata(value, {label: value}),
                   devices=[Disk(path=path, target="vda")], boot=Boot(cmdline=value))
    assert Domain.from_xml(built.to_xml()) == built


@pytest.mark.parametrize("value", ["nul\x00", "bell\x07", "esc\x1b[31m", "cr\rhere"])
def test_characters_xml_cannot_carry_are_refused(value: str) -> None:
    spec = VmSpec("vm", 1, 64, "/d.qcow2", None, None, None, None, labels={"k": value})
    with pytest.raises(UsageError, match=r"label k holds a (control character|carriage)"):
        domain_xml(spec, "kvm")
    with pytest.raises(UsageError, match="the disk's path holds a control character"):
        Domain("vm", 1, 64, devices=[Disk(path="/d\x00", target="vda")]).to_xml()


def test_a_refused_value_leaves_the_domain_as_it_was() -> None:
    dom = Domain.from_xml(FOREIGN_XML)
    dom.set_vcpus(3)
    dom.metadata = Metadata("t", {"k": "v"})
    disk = dom.add_disk(Disk(path="/srv/new.qcow2"))
    disk.path = "/srv/new\x00.qcow2"  # changed in the model directly; devices come last
    with pytest.raises(UsageError, match="the disk's path"):
        dom.to_xml()
    assert dom.tree is not None and children(ET.tostring(dom.tree, encoding="unicode")) == \
        children(FOREIGN_XML)
    disk.path = "/srv/new.qcow2"
    assert Domain.from_xml(dom.to_xml()) == dom


def test_a_feature_name_cannot_smuggle_markup() -> None:
    with pytest.raises(UsageError, match="is not a feature's name"):
        Domain("vm", 1, 64, features=["acpi/><evil"]).to_xml()


@pytest.mark.parametrize(("xml", "message"), [
    ("not xml at all", "not readable XML"),
    ("<!DOCTYPE d [<!ENTITY x 'y'>]><domain><name>&x;</name></domain>", "not readable XML"),
    ("<!DOCTYPE d SYSTEM 'file:///etc/passwd'><domain><name>a</name></domain>",
     "not readable XML"),
    ("<network><name>n</name></network>", "is a <network>, not a <domain>"),
    ("<domain><vcpu>1</vcpu></domain>", "has no name"),
    ("<domain><name>a</name><vcpu>²</vcpu></domain>", "unreadable vCPU count"),
    ("<domain><name>a</name><vcpu>-1</vcpu></domain>", "unreadable vCPU count"),
    ("<domain><name>a</name><vcpu current='x'>2</vcpu></domain>", "unreadable vCPU count"),
    ("<domain><name>a</name><vcpu>0</vcpu></domain>", "unreadable vCPU count"),
    ("<domain><name>a</name><memory unit='parsecs'>1</memory></domain>", "unknown unit"),
    ("<domain><name>a</name><memory>1e9</memory></domain>", "unreadable memory"),
    ("<domain><name>a</name><devices><serial type='file'><target port='x'/></serial>"
     "</devices></domain>", "unreadable serial port"),
])
def test_unreadable_definitions_are_refused_by_name(xml: str, message: str) -> None:
    with pytest.raises(HostError, match=message):
        Domain.from_xml(xml)


def test_metadata_as_libvirts_metadata_call_gives_it() -> None:
    assert parse_metadata('<vm><template>t</template><label name="a">b</label></vm>') == \
        ("t", {"a": "b"})
    assert parse_metadata(f'<g:vm xmlns:g="{METADATA_NS}"><g:label name="x">&lt;</g:label>'
                          f'</g:vm>') == (None, {"x": "<"})
    assert parse_metadata("<other/>") == (None, {})
    assert parse_metadata("<broken") == (None, {})


# ---- libvirt ----------------------------------------------------------------------------


@pytest.mark.integration
def test_libvirts_schema_accepts_what_the_builder_writes(tmp_path: Path) -> None:
    validator = shutil.which("virt-xml-validate")
    if validator is None:
        pytest.fail("virt-xml-validate is missing: it comes with libvirt-clients (make setup)")
    changed = Domain.from_xml(FOREIGN_XML)
    changed.set_vcpus(3)
    changed.set_memory(1024)
    changed.add_disk(Disk(path="/srv/data.qcow2"))
    changed.change_media("sda", None)
    changed.add_nic(Nic(network="default"))
    built = {"kvm": domain_xml(SPEC, "kvm"), "tcg": domain_xml(SPEC, "tcg"),
             "foreign": changed.to_xml(),
             "graphics": Domain("g", 1, 64, devices=[Graphics(socket="/run/g.sock"),
                                                     Video()]).to_xml()}
    for what, xml in built.items():
        path = tmp_path / f"{what}.xml"
        path.write_text(xml)
        done = subprocess.run([validator, str(path), "domain"], capture_output=True,
                              text=True)
        assert done.returncode == 0, (what, done.stdout, done.stderr)


@pytest.fixture
def scratch_name(libvirt_conn: libvirt.virConnect) -> Iterator[str]:
    """A name no other test uses; the domain defined under it is undefined afterwards."""
    name = f"gp-domainxml-{uuid.uuid4().hex[:8]}"
    yield name
    try:
        libvirt_conn.lookupByName(name).undefine()
    except libvirt.libvirtError:
        pass


@pytest.mark.integration
def test_libvirtd_defines_reads_back_and_redefines_a_built_domain(
        libvirt_conn: libvirt.virConnect, scratch_name: str) -> None:
    spec = VmSpec(scratch_name, 2, 256, f"/nonexistent/{scratch_name}.qcow2",
                  f"/nonexistent/{scratch_name}-seed.iso", "/nonexistent/vmlinuz", None,
                  "console=ttyS0", template="deb \"<&'", labels={"a&b": "x\n<y>"})
    built = glasspane_domain(spec, "tcg")
    dom = libvirt_conn.defineXML(built.to_xml())  # defined only: nothing boots
    read = Domain.from_xml(dom.XMLDesc(0))
    assert (read.name, read.vcpus, read.memory_mib, read.hypervisor) == \
        (scratch_name, 2, 256, "qemu")
    assert (read.boot.kernel, read.boot.cmdline) == ("/nonexistent/vmlinuz", "console=ttyS0")
    assert read.disks == built.disks
    assert [(n.network, n.model) for n in read.nics] == [("default", "virtio")]
    assert read.nics[0].mac  # libvirt picked one
    assert read.metadata == Metadata("deb \"<&'", {"a&b": "x\n<y>"})
    assert dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)

    read.set_vcpus(3)
    read.set_memory(384)
    read.add_disk(Disk(path=f"/nonexistent/{scratch_name}-data.qcow2"))
    read.change_media("sda", None)
    before = copy.deepcopy(read.tree)
    dom = libvirt_conn.defineXML(read.to_xml())
    again = Domain.from_xml(dom.XMLDesc(0))
    assert (again.vcpus, again.memory_mib, again.uuid) == (3, 384, read.uuid)
    assert sorted((d.target, d.path or "") for d in again.disks) == \
        [("sda", ""), ("sdb", ""), ("vda", spec.disk),
         ("vdb", f"/nonexistent/{scratch_name}-data.qcow2")]
    # What libvirt added on the first definition (controllers, addresses) is still there.
    assert before is not None
    kept = [shape(c) for c in before.find("devices") if c.tag == "controller"]
    assert kept and all(c in [shape(e) for e in ET.fromstring(dom.XMLDesc(0)).iter()]
                        for c in kept)
