"""OVF descriptors (DMTF DSP0243): the VM's name, vCPUs, memory and disks.  Parsed with
defusedxml and matched by local element names, so OVF 1.x and 2.x namespaces both work."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from xml.etree.ElementTree import Element, SubElement, register_namespace, tostring

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from glasspane.errors import FormatError, LimitExceeded

NS_OVF = "http://schemas.dmtf.org/ovf/envelope/1"
NS_RASD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_ResourceAllocationSettingData"
NS_VSSD = "http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/CIM_VirtualSystemSettingData"
NS_VMW = "http://www.vmware.com/schema/ovf"
VMDK_STREAM = "http://www.vmware.com/interfaces/specifications/vmdk.html#streamOptimized"
MAX_OVF = 16 << 20
# Bounds checked before any arithmetic: `byte * 2^4000000000` is a valid-looking unit whose
# shift would build a 500 MB integer (and printing it takes hours).
MAX_UNIT_EXPONENT = 60
MAX_DIGITS = 20
MAX_VCPUS = 4096
MAX_MEMORY_MIB = 1 << 24  # 16 TiB
MAX_CAPACITY = 64 << 40   # as base.MAX_VIRTUAL_SIZE (not imported: ovf stays pure data)
MAX_DISKS = 256           # each is opened (its tables read) with the VM: not thousands

for _prefix, _uri in (("ovf", NS_OVF), ("rasd", NS_RASD), ("vssd", NS_VSSD), ("vmw", NS_VMW)):
    register_namespace(_prefix, _uri)


@dataclass
class OvfDisk:
    disk_id: str
    href: str
    capacity: int


@dataclass
class OvfDescriptor:
    name: str
    vcpus: int
    memory_mib: int
    disks: list[OvfDisk] = field(default_factory=list)


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _attr(elem: Element, name: str) -> str | None:
    for key, value in elem.attrib.items():
        if _local(key) == name:
            return value
    return None


def _children(elem: Element, name: str) -> list[Element]:
    return [c for c in elem.iter() if _local(c.tag) == name]


def _text(elem: Element, name: str) -> str | None:
    for c in elem:
        if _local(c.tag) == name:
            return (c.text or "").strip()
    return None


_UNITS = re.compile(r"^\s*byte\s*\*\s*2\s*\^\s*(\d+)\s*$", re.I)
_NAMED_UNITS = {"byte": 0, "bytes": 0, "kilobytes": 10, "kb": 10, "megabytes": 20, "mb": 20,
                "gigabytes": 30, "gb": 30}


def unit_shift(units: str | None, default: int, path: str = "", structure: str = "OVF"
               ) -> int:
    if not units:
        return default
    m = _UNITS.match(units)
    if m:
        digits = m.group(1)
        if len(digits) > 2 or int(digits) > MAX_UNIT_EXPONENT:
            raise LimitExceeded(f"{structure}: allocation units 'byte * 2^{digits[:12]}' have "
                                f"an exponent beyond {MAX_UNIT_EXPONENT}", path=path,
                                hint="the descriptor is corrupt or crafted")
        return int(digits)
    return _NAMED_UNITS.get(units.strip().lower(), default)


def _count(text: str, what: str, path: str, structure: str) -> int:
    """A whole number from the descriptor, digits only and short, before any arithmetic."""
    text = text.strip()
    if not text.isascii() or not text.isdigit():
        raise FormatError(f"{what} {text[:24]!r} is not a whole number", path=path,
                          structure=structure)
    if len(text) > MAX_DIGITS:
        raise LimitExceeded(f"{structure}: {what} of {len(text)} digits", path=path,
                            hint="the descriptor is corrupt or crafted")
    return int(text)


def _in_range(value: int, low: int, high: int, what: str, path: str, structure: str) -> int:
    if not low <= value <= high:
        raise LimitExceeded(f"{structure}: {what} {value} is outside {low}..{high}", path=path,
                            hint="the descriptor is corrupt or crafted")
    return value


def parse_ovf(raw: bytes, path: str) -> OvfDescriptor:
    return _interpret(_parse_xml(raw, path), path)


def _parse_xml(raw: bytes, path: str) -> Element:
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException as exc:
        raise FormatError(f"OVF descriptor uses a forbidden XML construct "
                          f"({type(exc).__name__})", path=path, structure="OVF descriptor",
                          hint="DTDs and entities are refused: the file may be hostile") from None
    except (SafeET.ParseError, LookupError, ValueError) as exc:
        raise FormatError(f"OVF descriptor is not well-formed XML: {exc}", path=path,
                          structure="OVF descriptor") from None
    return root  # type: ignore[no-any-return]


def _interpret(root: Element, path: str) -> OvfDescriptor:
    if _local(root.tag) != "Envelope":
        raise FormatError(f"root element is {_local(root.tag)}, expected Envelope", path=path,
                          structure="OVF descriptor")
    files = {_attr(f, "id"): _attr(f, "href") for f in _children(root, "File")}
    systems = _children(root, "VirtualSystem")
    if not systems:
        raise FormatError("no VirtualSystem", path=path, structure="OVF descriptor")
    system = systems[0]
    name = _text(system, "Name") or _attr(system, "id") or "vm"
    vcpus, memory = 1, 1024
    disk_order: list[str] = []
    for item in _children(system, "Item") + _children(system, "StorageItem"):
        rtype = _text(item, "ResourceType")
        quantity = _text(item, "VirtualQuantity")
        if rtype == "3" and quantity:
            vcpus = _in_range(_count(quantity, "vCPU count", path, "OVF CPU item"), 1,
                              MAX_VCPUS, "vCPU count", path, "OVF CPU item")
        elif rtype == "4" and quantity:
            where = "OVF memory item"
            amount = _count(quantity, "memory quantity", path, where) << unit_shift(
                _text(item, "AllocationUnits"), 20, path, where)
            memory = _in_range(amount >> 20, 1, MAX_MEMORY_MIB, "memory (MiB)", path, where)
        elif rtype == "17":
            for res in (_text(item, "HostResource") or "").split():
                disk_order.append(res.rsplit("/", 1)[-1])
    disks: dict[str, OvfDisk] = {}
    found = _children(root, "Disk")
    if len(found) > MAX_DISKS:
        raise LimitExceeded(f"OVF DiskSection: {len(found)} disks, more than {MAX_DISKS}",
                            path=path, hint="the descriptor is corrupt or crafted")
    for d in found:
        disk_id = _attr(d, "diskId") or ""
        href = files.get(_attr(d, "fileRef"))
        if not href:
            raise FormatError(f"disk {disk_id!r} refers to no file", path=path,
                              structure="OVF DiskSection")
        where = f"OVF disk {disk_id[:64]!r}"
        capacity = _count(_attr(d, "capacity") or "0", "capacity", path, where) << unit_shift(
            _attr(d, "capacityAllocationUnits"), 0, path, where)
        disks[disk_id] = OvfDisk(disk_id, href,
                                 _in_range(capacity, 0, MAX_CAPACITY, "capacity", path, where))
    ordered = [disks[d] for d in disk_order if d in disks]
    ordered += [d for d in disks.values() if d not in ordered]
    return OvfDescriptor(name, vcpus, memory, ordered)


def _q(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


def _rasd_item(parent: Element, fields: dict[str, str]) -> None:
    item = SubElement(parent, _q(NS_OVF, "Item"))
    for key in sorted(fields):  # the CIM schema wants rasd elements in alphabetical order
        SubElement(item, _q(NS_RASD, key)).text = fields[key]


def build_ovf(desc: OvfDescriptor) -> bytes:
    env = Element(_q(NS_OVF, "Envelope"))
    refs = SubElement(env, _q(NS_OVF, "References"))
    for i, d in enumerate(desc.disks):
        SubElement(refs, _q(NS_OVF, "File"), {_q(NS_OVF, "href"): d.href,
                                              _q(NS_OVF, "id"): f"file{i + 1}"})
    section = SubElement(env, _q(NS_OVF, "DiskSection"))
    SubElement(section, _q(NS_OVF, "Info")).text = "Virtual disk information"
    for i, d in enumerate(desc.disks):
        SubElement(section, _q(NS_OVF, "Disk"), {
            _q(NS_OVF, "capacity"): str(d.capacity),
            _q(NS_OVF, "capacityAllocationUnits"): "byte",
            _q(NS_OVF, "diskId"): d.disk_id, _q(NS_OVF, "fileRef"): f"file{i + 1}",
            _q(NS_OVF, "format"): VMDK_STREAM})
    system = SubElement(env, _q(NS_OVF, "VirtualSystem"), {_q(NS_OVF, "id"): desc.name})
    SubElement(system, _q(NS_OVF, "Info")).text = "A virtual machine"
    SubElement(system, _q(NS_OVF, "Name")).text = desc.name
    os_section = SubElement(system, _q(NS_OVF, "OperatingSystemSection"),
                            {_q(NS_OVF, "id"): "101", _q(NS_VMW, "osType"): "otherLinux64Guest"})
    SubElement(os_section, _q(NS_OVF, "Info")).text = "The guest operating system"
    hw = SubElement(system, _q(NS_OVF, "VirtualHardwareSection"))
    SubElement(hw, _q(NS_OVF, "Info")).text = "Virtual hardware requirements"
    sys_el = SubElement(hw, _q(NS_OVF, "System"))
    for key, value in (("ElementName", "Virtual Hardware Family"), ("InstanceID", "0"),
                       ("VirtualSystemIdentifier", desc.name),
                       ("VirtualSystemType", "vmx-10")):
        SubElement(sys_el, _q(NS_VSSD, key)).text = value
    _rasd_item(hw, {"AllocationUnits": "hertz * 10^6", "ElementName":
                    f"{desc.vcpus} virtual CPU(s)", "InstanceID": "1", "ResourceType": "3",
                    "VirtualQuantity": str(desc.vcpus)})
    _rasd_item(hw, {"AllocationUnits": "byte * 2^20", "ElementName":
                    f"{desc.memory_mib}MB of memory", "InstanceID": "2", "ResourceType": "4",
                    "VirtualQuantity": str(desc.memory_mib)})
    _rasd_item(hw, {"ElementName": "SCSI Controller 0", "InstanceID": "3",
                    "ResourceSubType": "lsilogic", "ResourceType": "6"})
    for i, d in enumerate(desc.disks):
        _rasd_item(hw, {"AddressOnParent": str(i), "ElementName": f"Hard Disk {i + 1}",
                        "HostResource": f"ovf:/disk/{d.disk_id}", "InstanceID": str(10 + i),
                        "Parent": "3", "ResourceType": "17"})
    body = bytes(tostring(env, encoding="utf-8", xml_declaration=False))
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body
