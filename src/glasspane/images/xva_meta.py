"""`ova.xml`, the metadata at the head of an XVA: XML-RPC style values describing the VM, its
VBDs, VDIs and SRs.  Parsed with defusedxml (no DTDs, no entities); written minimal but with the
fields XAPI's importer reads.  The stamped XAPI version is deliberately old, since XAPI refuses
imports from a newer version than its own (importexport.ml, assert_compatible)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any
from xml.etree.ElementTree import Element, SubElement, tostring

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from glasspane.errors import FormatError, LimitExceeded
from glasspane.images.vm import VmSettings

NULL_REF = "OpaqueRef:NULL"
MAX_OVA_XML = 64 << 20
# XAPI's own documents nest five levels deep (objects, snapshot, platform...); deeper is
# crafted, and would otherwise end in a RecursionError.
MAX_DEPTH = 32
MAX_DIGITS = 20
MAX_VCPUS = 4096
MAX_MEMORY = 16 << 40


class _TooDeep(Exception):
    pass


def parse_value(elem: Element, depth: int = 0) -> Any:
    """An XML-RPC <value> as Python: struct -> dict, array -> list, scalars as text/int/bool."""
    if depth > MAX_DEPTH:
        raise _TooDeep
    children = list(elem)
    if not children:
        return elem.text or ""
    child = children[0]
    tag = child.tag
    if tag == "struct":
        out: dict[str, Any] = {}
        for member in child.findall("member"):
            name = member.findtext("name") or ""
            value = member.find("value")
            out[name] = parse_value(value, depth + 1) if value is not None else ""
        return out
    if tag == "array":
        data = child.find("data")
        return [parse_value(v, depth + 1)
                for v in (data.findall("value") if data is not None else [])]
    if tag == "boolean":
        return (child.text or "0").strip() == "1"
    if tag in ("int", "i4", "i8"):
        return _whole((child.text or "0").strip())
    if tag == "double":
        return float((child.text or "0").strip())
    return child.text or ""


def parse_ova_xml(raw: bytes, path: str) -> dict[str, Any]:
    try:
        root = SafeET.fromstring(raw, forbid_dtd=True, forbid_entities=True,
                                 forbid_external=True)
    except DefusedXmlException as exc:
        raise FormatError(f"ova.xml uses a forbidden XML construct ({type(exc).__name__})",
                          path=path, structure="ova.xml",
                          hint="DTDs and entities are refused: the file may be hostile") from None
    except (SafeET.ParseError, LookupError, ValueError) as exc:
        raise FormatError(f"ova.xml is not well-formed XML: {exc}", path=path,
                          structure="ova.xml") from None
    if root.tag != "value":
        raise FormatError(f"ova.xml root is <{root.tag}>, expected <value>", path=path,
                          structure="ova.xml")
    try:
        doc = parse_value(root)
    except _TooDeep:
        raise LimitExceeded(f"ova.xml: values nested deeper than {MAX_DEPTH} levels",
                            path=path, hint="the export is corrupt or crafted") from None
    except ValueError as exc:
        raise FormatError(f"ova.xml holds a malformed value: {exc}", path=path,
                          structure="ova.xml") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("objects"), list):
        raise FormatError("ova.xml has no 'objects' list", path=path, structure="ova.xml")
    return doc


@dataclass
class XvaDiskRecord:
    ref: str
    name: str
    virtual_size: int
    userdevice: str


def _whole(text: str) -> int:
    """A number from the document: digits only (and a sign), never thousands of them."""
    digits = text.removeprefix("-")
    if not digits.isascii() or not digits.isdigit() or len(digits) > MAX_DIGITS:
        raise ValueError(f"{text[:24]!r} is not a whole number of at most {MAX_DIGITS} digits")
    return int(text)


def disks_of(doc: dict[str, Any], path: str) -> tuple[dict[str, Any], list[XvaDiskRecord]]:
    """The exported VM's record and its disks in userdevice order."""
    try:
        return _disks_of(doc, path)
    except (TypeError, AttributeError):  # a list where a name belongs, a struct for a ref...
        raise FormatError("ova.xml holds a value of the wrong type (a struct or list where a "
                          "name or a number belongs)", path=path, structure="ova.xml",
                          hint="the export is corrupt or crafted") from None


def _disks_of(doc: dict[str, Any], path: str) -> tuple[dict[str, Any], list[XvaDiskRecord]]:
    objects = {str(o.get("id")): o for o in doc["objects"] if isinstance(o, dict)}
    vms = [o for o in objects.values() if o.get("class") == "VM"
           and not _snap(o).get("is_a_snapshot")]
    if not vms:
        raise FormatError("ova.xml describes no VM", path=path, structure="ova.xml")
    vm = _snap(vms[0])
    disks: list[XvaDiskRecord] = []
    vbds = vm.get("VBDs", [])
    for vbd_ref in vbds if isinstance(vbds, list) else []:
        vbd = _snap(objects.get(str(vbd_ref), {}))
        if not vbd or str(vbd.get("type", "Disk")).lower() == "cd" or vbd.get("empty") is True:
            continue
        vdi_ref = str(vbd.get("VDI", NULL_REF))
        vdi = _snap(objects.get(vdi_ref, {}))
        if not vdi:
            continue
        try:
            size = _whole(str(vdi.get("virtual_size", "0")))
        except ValueError:
            raise FormatError(f"VDI {vdi_ref[:64]} has a non-numeric virtual_size", path=path,
                              structure="ova.xml") from None
        disks.append(XvaDiskRecord(vdi_ref, str(vdi.get("name_label", vdi_ref)), size,
                                   str(vbd.get("userdevice", "0"))))
    disks.sort(key=lambda d: (int(d.userdevice) if d.userdevice.isdigit()
                              and len(d.userdevice) < 6 else 99, d.ref))
    return vm, disks


def int_field(record: dict[str, Any], name: str, default: int, path: str,
              high: int | None = None) -> int:
    value = record.get(name) or default
    try:
        number = value if isinstance(value, int) else _whole(str(value).strip())
    except ValueError:
        raise FormatError(f"VM field {name} is {str(value)[:40]!r}, not a number", path=path,
                          structure="ova.xml") from None
    if number < 0 or (high is not None and number > high):
        raise LimitExceeded(f"ova.xml: VM field {name} is {number}, outside 0..{high}",
                            path=path, hint="the export is corrupt or crafted")
    return number


def _snap(obj: dict[str, Any]) -> dict[str, Any]:
    snap = obj.get("snapshot", obj)
    return snap if isinstance(snap, dict) else {}


# ---- writing ----------------------------------------------------------------------------

def _value(parent: Element, value: Any) -> None:
    v = SubElement(parent, "value")
    if isinstance(value, bool):
        SubElement(v, "boolean").text = "1" if value else "0"
    elif isinstance(value, float):
        SubElement(v, "double").text = repr(value)
    elif isinstance(value, dict):
        struct = SubElement(v, "struct")
        for key, item in value.items():
            member = SubElement(struct, "member")
            SubElement(member, "name").text = key
            _value(member, item)
    elif isinstance(value, list):
        data = SubElement(SubElement(v, "array"), "data")
        for item in value:
            _value(data, item)
    elif isinstance(value, _DateTime):
        SubElement(v, "dateTime.iso8601").text = value.text
    else:
        v.text = str(value)


@dataclass(frozen=True)
class _DateTime:
    text: str


_EPOCH = _DateTime("19700101T00:00:00Z")


def vdi_ref(index: int) -> str:
    # Three digits from 100 up: XAPI streams VDIs in string order of these refs, which
    # must match the order the disks are written in.
    return f"Ref:{100 + index}"


def build_ova_xml(vm: VmSettings, sizes: list[int]) -> bytes:
    vbd_refs = [f"Ref:{200 + i}" for i in range(len(sizes))]
    vdi_refs = [vdi_ref(i) for i in range(len(sizes))]
    memory = str(vm.memory_mib << 20)
    vm_record = {
        "uuid": str(uuid.uuid4()), "allowed_operations": [], "current_operations": {},
        "power_state": "Halted", "name_label": vm.name, "name_description": "",
        "user_version": "1", "is_a_template": False, "suspend_VDI": NULL_REF,
        "resident_on": NULL_REF, "affinity": NULL_REF, "memory_overhead": "0",
        "memory_target": memory, "memory_static_max": memory, "memory_dynamic_max": memory,
        "memory_dynamic_min": memory, "memory_static_min": str(16 << 20),
        "VCPUs_params": {}, "VCPUs_max": str(vm.vcpus), "VCPUs_at_startup": str(vm.vcpus),
        "actions_after_shutdown": "destroy", "actions_after_reboot": "restart",
        "actions_after_crash": "restart", "consoles": [], "VIFs": [], "VBDs": vbd_refs,
        "crash_dumps": [], "VTPMs": [], "PV_bootloader": "", "PV_kernel": "",
        "PV_ramdisk": "", "PV_args": "", "PV_bootloader_args": "", "PV_legacy_args": "",
        "HVM_boot_policy": "BIOS order", "HVM_boot_params": {"order": "cd"},
        "HVM_shadow_multiplier": 1.0,
        "platform": {"acpi": "1", "apic": "true", "pae": "true", "viridian": "false",
                     "nx": "true", "hpet": "true", "timeoffset": "0"},
        "PCI_bus": "", "other_config": {"glasspane": "exported"}, "domid": "-1",
        "domarch": "", "last_boot_CPU_flags": {}, "is_control_domain": False,
        "metrics": NULL_REF, "guest_metrics": NULL_REF, "last_booted_record": "",
        "recommendations": "", "xenstore_data": {}, "ha_always_run": False,
        "ha_restart_priority": "", "is_a_snapshot": False, "snapshot_of": NULL_REF,
        "snapshots": [], "snapshot_time": _EPOCH, "transportable_snapshot_id": "",
        "blobs": {}, "tags": [], "blocked_operations": {},
    }
    objects: list[dict[str, Any]] = [{"class": "VM", "id": "Ref:0", "snapshot": vm_record}]
    names = vm.disk_names or []
    for i, size in enumerate(sizes):
        objects.append({"class": "VBD", "id": vbd_refs[i], "snapshot": {
            "uuid": str(uuid.uuid4()), "allowed_operations": [], "current_operations": {},
            "VM": "Ref:0", "VDI": vdi_refs[i], "device": f"xvd{chr(ord('a') + i % 26)}",
            "userdevice": str(i), "bootable": i == 0, "mode": "RW", "type": "Disk",
            "unpluggable": False, "storage_lock": False, "empty": False,
            "other_config": {"owner": "true"}, "currently_attached": False,
            "status_code": "0", "status_detail": "", "runtime_properties": {},
            "qos_algorithm_type": "", "qos_algorithm_params": {},
            "qos_supported_algorithms": [], "metrics": NULL_REF}})
        objects.append({"class": "VDI", "id": vdi_refs[i], "snapshot": {
            "uuid": str(uuid.uuid4()),
            "name_label": names[i] if i < len(names) else f"{vm.name} disk {i}",
            "name_description": "", "allowed_operations": [], "current_operations": {},
            "SR": "Ref:1", "VBDs": [vbd_refs[i]], "crash_dumps": [],
            "virtual_size": str(size), "physical_utilisation": str(size), "type": "user",
            "sharable": False, "read_only": False, "other_config": {}, "storage_lock": False,
            "location": "", "managed": True, "missing": False, "parent": NULL_REF,
            "xenstore_data": {}, "sm_config": {}, "is_a_snapshot": False,
            "snapshot_of": NULL_REF, "snapshots": [], "snapshot_time": _EPOCH, "tags": []}})
    objects.append({"class": "SR", "id": "Ref:1", "snapshot": {
        "uuid": str(uuid.uuid4()), "name_label": "glasspane export", "name_description": "",
        "allowed_operations": [], "current_operations": {}, "VDIs": vdi_refs, "PBDs": [],
        "virtual_allocation": "0", "physical_utilisation": "0", "physical_size": "0",
        "type": "lvm", "content_type": "user", "shared": False, "other_config": {},
        "tags": [], "sm_config": {}, "blobs": {}}})
    doc = {"version": {"hostname": "glasspane", "date": "2015-01-01",
                       "product_version": "6.5.0", "product_brand": "XenServer",
                       "build_number": "glasspane", "xapi_major": "1", "xapi_minor": "1",
                       "export_vsn": "2"},
           "objects": objects}
    root = Element("root")
    _value(root, doc)
    return bytes(tostring(root[0], encoding="utf-8", xml_declaration=False))
