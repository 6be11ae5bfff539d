"""Crafted archives for the security tests, written byte by byte (the toolkit's own tar writer
would refuse to write most of them): an OVF whose allocation units are `byte * 2^4000000000`,
tars whose pax `size` is negative or not a number, an ova.xml nested thousands deep, an OVA
manifest with a digest nobody knows, absurd vCPU counts and memory sizes."""

from __future__ import annotations

from pathlib import Path

from glasspane.images import tar
from glasspane.images.xva_meta import build_ova_xml

HUGE_UNITS = "byte * 2^4000000000"

_OVF = """<?xml version="1.0" encoding="UTF-8"?>
<Envelope xmlns="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:ovf="http://schemas.dmtf.org/ovf/envelope/1"
    xmlns:rasd="http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData">
  <References><File ovf:id="f1" ovf:href="root.vmdk"/></References>
  <DiskSection><Info>disks</Info>
    <Disk ovf:diskId="d1" ovf:fileRef="f1" ovf:capacity="{capacity}"
          ovf:capacityAllocationUnits="{capacity_units}"/>
  </DiskSection>
  <VirtualSystem ovf:id="x">
    <Info>a VM</Info><Name>x</Name>
    <VirtualHardwareSection><Info>hw</Info>
      <Item><rasd:InstanceID>1</rasd:InstanceID><rasd:ResourceType>3</rasd:ResourceType>
        <rasd:VirtualQuantity>{vcpus}</rasd:VirtualQuantity></Item>
{memory_items}
    </VirtualHardwareSection>
  </VirtualSystem>
</Envelope>
"""
_MEMORY_ITEM = """      <Item><rasd:AllocationUnits>{units}</rasd:AllocationUnits>
        <rasd:InstanceID>2</rasd:InstanceID><rasd:ResourceType>4</rasd:ResourceType>
        <rasd:VirtualQuantity>{quantity}</rasd:VirtualQuantity></Item>"""


def ovf(vcpus: str = "2", memory: str = "1024", memory_units: str = "byte * 2^20",
        capacity: str = "1", capacity_units: str = "byte * 2^20", items: int = 1) -> bytes:
    item = _MEMORY_ITEM.format(units=memory_units, quantity=memory)
    return _OVF.format(vcpus=vcpus, capacity=capacity, capacity_units=capacity_units,
                       memory_items="\n".join([item] * items)).encode()


def member(name: str, data: bytes, typeflag: bytes = b"0") -> bytes:
    """A ustar header (of any type) and its padded data."""
    raw = bytearray(tar.header(name, len(data), mtime=0))
    raw[156:157] = typeflag
    raw[148:156] = b" " * 8
    raw[148:156] = f"{sum(raw):06o}\0 ".encode()
    return bytes(raw) + data + tar.padding(len(data))


def pax_record(key: str, value: str) -> bytes:
    body = f" {key}={value}\n"
    length = len(body) + 1
    while len(str(length)) + len(body) != length:
        length += 1
    return f"{length}{body}".encode()


def write_archive(path: Path, *members: bytes) -> Path:
    path.write_bytes(b"".join(members) + tar.END_OF_ARCHIVE)
    return path


def huge_units_ova(path: Path) -> Path:
    """The issue's 28 KB OVA: memory items whose units are `byte * 2^4000000000`."""
    return write_archive(path, member("x.ovf", ovf(memory="1", memory_units=HUGE_UNITS,
                                                   items=100)))


def absurd_ova(path: Path, **fields: str) -> Path:
    return write_archive(path, member("x.ovf", ovf(**fields)))


def pax_size_tar(path: Path, size: str) -> Path:
    """A pax header giving the next member (an OVF descriptor) the size `size`."""
    return write_archive(path, member("PaxHeaders/x.ovf", pax_record("size", size), b"x"),
                         member("x.ovf", ovf()))


def manifest_ova(path: Path, algorithm: str) -> Path:
    descriptor = ovf()
    manifest = f"{algorithm}(x.ovf)= 00\n".encode()
    return write_archive(path, member("x.ovf", descriptor), member("x.mf", manifest))


def deep_xva(path: Path, depth: int = 5000) -> Path:
    """An XVA whose ova.xml nests arrays `depth` deep inside an otherwise normal document."""
    from glasspane.images.vm import VmSettings
    normal = build_ova_xml(VmSettings("deep", 1, 256), [])
    nested = b"<value><array><data>" * depth + b"<value>x</value>" + \
        b"</data></array></value>" * depth
    # The nesting goes in as the value of one of the VM's fields.
    xml = normal.replace(b"<name>PV_args</name><value />",
                         b"<name>PV_args</name>" + nested, 1)
    assert xml != normal
    return write_archive(path, member("ova.xml", xml))
