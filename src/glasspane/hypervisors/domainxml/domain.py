"""A libvirt domain as a typed model that can be built, read back from libvirt, changed and
written again, in the manner of virt-manager's virtinst.

The model covers what glasspane makes (name, CPUs, memory, boot, disks, NICs, serial
console, RNG, its own metadata); a domain read with `Domain.from_xml` keeps its parsed
tree, and `to_xml` writes the model into that tree, so everything the model does not
describe (controllers, addresses, others' metadata, tuning) is still there afterwards.

Parsing goes through defusedxml: a domain's XML comes from libvirt, but whoever defined it
chose its values, and a DTD or entity in it is refused rather than expanded.  Comments and
processing instructions are not kept (libvirt gives none back in XMLDesc).
"""

from __future__ import annotations

import re
import string
from copy import deepcopy
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET
from xml.etree.ElementTree import Element, SubElement

import defusedxml.ElementTree as SafeET

from glasspane.errors import Conflict, HostError, NotFound, UsageError
from glasspane.hypervisors.domainxml.devices import (
    Device,
    Disk,
    Nic,
    is_device,
    new_element,
    read_device,
)
from glasspane.hypervisors.domainxml.metadata import Metadata, read_metadata, write_metadata
from glasspane.hypervisors.domainxml.nodes import (
    attr,
    checked,
    checked_text,
    child,
    drop,
    memory_kib,
    set_attr,
    set_child_text,
    to_int,
)

_FEATURE = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,63}")

# The guest's name prefix of a disk on each bus (libvirt's vda, sda, hda...).
_TARGET_PREFIX = {"virtio": "vd", "sata": "sd", "scsi": "sd", "usb": "sd", "ide": "hd",
                  "xen": "xvd", "fdc": "fd"}


@dataclass
class Boot:
    """How the VM boots: a kernel given directly (templates without a bootloader), or,
    with no kernel, the guest's own bootloader from `devices` (libvirt's default: the
    first disk)."""

    arch: str | None = "x86_64"
    machine: str | None = "q35"
    kernel: str | None = None
    initrd: str | None = None
    cmdline: str | None = None
    devices: list[str] = field(default_factory=list)  # hd | cdrom | network, in order
    firmware: str | None = None                       # efi | bios; None: libvirt's choice
    os_type: str = "hvm"
    # UEFI given explicitly: the firmware's code (read-only pflash), the VM's own variable
    # store and the file it is first copied from.
    loader: str | None = None
    nvram: str | None = None
    nvram_template: str | None = None

    @property
    def uefi(self) -> bool:
        return self.firmware == "efi" or self.loader is not None


@dataclass
class Domain:
    name: str
    vcpus: int
    memory_mib: int
    uuid: str | None = None          # None: libvirt gives one when it defines the domain
    hypervisor: str = "kvm"          # the domain type: kvm | qemu (emulated: TCG)
    cpu_mode: str | None = None      # host-passthrough under KVM; None: no <cpu>
    boot: Boot = field(default_factory=Boot)
    features: list[str] = field(default_factory=lambda: ["acpi", "apic"])
    clock_offset: str | None = "utc"
    on_poweroff: str | None = "destroy"
    on_reboot: str | None = "restart"
    on_crash: str | None = "destroy"
    metadata: Metadata | None = None
    devices: list[Device] = field(default_factory=list)
    # The parsed (or last written) tree, which to_xml edits; not part of the value.
    tree: Element | None = field(default=None, compare=False, repr=False)

    # ---- reading -----------------------------------------------------------------------

    @classmethod
    def from_xml(cls, text: str) -> Domain:
        """The domain in libvirt's XML (XMLDesc); raises HostError for anything that is
        not a readable domain."""
        try:
            root = SafeET.fromstring(text, forbid_dtd=True)  # libvirt never writes one
        except (SafeET.ParseError, ValueError) as exc:  # defusedxml's refusals are ValueErrors
            raise HostError(f"the VM's definition is not readable XML: {type(exc).__name__}"
                            ) from exc
        if root.tag != "domain":
            raise HostError(f"the VM's definition is a <{root.tag[:40]}>, not a <domain>")
        name = root.findtext("name")
        if not name:
            raise HostError("the VM's definition has no name")
        memory = root.find("memory")
        vcpu = root.find("vcpu")
        cpu = root.find("cpu")
        devices = root.find("devices")
        features = root.find("features")
        return cls(
            name=name, uuid=root.findtext("uuid"), hypervisor=root.get("type", ""),
            vcpus=_read_vcpus(vcpu) if vcpu is not None else 1,
            memory_mib=memory_kib(memory, "memory") // 1024 if memory is not None else 0,
            cpu_mode=attr(cpu, "mode"), boot=_read_boot(root.find("os")),
            features=[f.tag for f in features] if features is not None else [],
            clock_offset=attr(root.find("clock"), "offset"),
            on_poweroff=root.findtext("on_poweroff"), on_reboot=root.findtext("on_reboot"),
            on_crash=root.findtext("on_crash"), metadata=read_metadata(root.find("metadata")),
            devices=[d for d in map(read_device, devices if devices is not None else [])
                     if d is not None],
            tree=root)

    @property
    def disks(self) -> list[Disk]:
        return [d for d in self.devices if isinstance(d, Disk)]

    @property
    def nics(self) -> list[Nic]:
        return [d for d in self.devices if isinstance(d, Nic)]

    # ---- changing ----------------------------------------------------------------------

    def set_vcpus(self, count: int) -> None:
        if count < 1:
            raise UsageError(f"a VM needs at least one vCPU, not {count}")
        self.vcpus = count

    def set_memory(self, mib: int) -> None:
        if mib < 1:
            raise UsageError(f"a VM needs some memory, not {mib} MiB")
        self.memory_mib = mib

    def add_disk(self, disk: Disk) -> Disk:
        """Attach `disk` (at the next free target on its bus when it names none)."""
        disk.write(Element(disk.tag))  # refuses a value XML cannot carry now
        if not disk.target:
            disk.target = self._free_target(disk.bus)
        if any(d.target == disk.target for d in self.disks):
            raise Conflict(f"VM {self.name} already has a disk {disk.target}",
                           hint="give another target, or none to take the next free one")
        self._insert(disk)
        return disk

    def remove_disk(self, target: str) -> Disk:
        disk = self._disk(target)
        self.devices.remove(disk)
        return disk

    def change_media(self, target: str, path: str | None) -> Disk:
        """Put another image in a CD (or floppy) drive; None ejects it."""
        disk = self._disk(target)
        if disk.device not in ("cdrom", "floppy"):
            raise Conflict(f"disk {target} of VM {self.name} is a {disk.device}, "
                           f"not a removable drive", hint="change media of a CD drive")
        if path is not None:
            checked(path, "the CD's image path")
        disk.path = path
        return disk

    def add_nic(self, nic: Nic) -> Nic:
        nic.write(Element(nic.tag))  # refuses a malformed MAC now, not at the next to_xml
        mac = (nic.mac or "").lower()
        if mac and any((n.mac or "").lower() == mac for n in self.nics):
            raise Conflict(f"VM {self.name} already has an interface with MAC {nic.mac}",
                           hint="give another MAC, or none to let libvirt pick one")
        self._insert(nic)
        return nic

    def remove_nic(self, mac: str) -> Nic:
        for nic in self.nics:
            if (nic.mac or "").lower() == mac.lower():
                self.devices.remove(nic)
                return nic
        raise NotFound(f"VM {self.name} has no interface with MAC {mac}")

    def _insert(self, device: Device) -> None:
        """After the last device of its kind, where to_xml puts it in the tree too."""
        same = [i for i, d in enumerate(self.devices) if type(d) is type(device)]
        self.devices.insert(same[-1] + 1 if same else len(self.devices), device)

    def _disk(self, target: str) -> Disk:
        for disk in self.disks:
            if disk.target == target:
                return disk
        raise NotFound(f"VM {self.name} has no disk {target}",
                       hint="its disks: " + (", ".join(d.target for d in self.disks) or "none"))

    def _free_target(self, bus: str) -> str:
        prefix = _TARGET_PREFIX.get(bus, "sd")
        taken = {d.target for d in self.disks}
        letters = string.ascii_lowercase
        names: list[str] = [prefix + a for a in letters]
        names += [prefix + a + b for a in letters for b in letters]
        free = [n for n in names if n not in taken]
        if not free:
            raise Conflict(f"VM {self.name} has no free target left on bus {bus}")
        return free[0]

    # ---- writing -----------------------------------------------------------------------

    def to_xml(self) -> str:
        """The domain's XML: the model written into the tree it was read from (or a new
        one), so that nothing the model does not describe is lost.  Written into a copy
        first: a value refused (UsageError) leaves the domain as it was."""
        source = self.tree if self.tree is not None else Element("domain")
        root = deepcopy(source)
        # The copy of each element, for the devices read from the source (same structure,
        # so the same order of iteration).
        twin = {id(old): new for old, new in zip(source.iter(), root.iter(), strict=True)}
        set_attr(root, "type", self.hypervisor or None, "the domain type")
        set_child_text(root, "name", self.name, "the VM's name")
        set_child_text(root, "uuid", self.uuid, "the VM's UUID")
        write_metadata(root, self.metadata)
        self._write_sizes(root)
        _write_boot(child(root, "os"), self.boot)
        _write_features(root, self.features)
        self._write_cpu(root)
        if self.clock_offset is not None or root.find("clock") is not None:
            set_attr(child(root, "clock"), "offset", self.clock_offset, "the clock offset")
        for event in ("on_poweroff", "on_reboot", "on_crash"):
            set_child_text(root, event, getattr(self, event), f"the VM's {event}")
        origins = [None if d.origin is None else twin.get(id(d.origin), d.origin)
                   for d in self.devices]
        placed = _write_devices(child(root, "devices"), self.devices, origins) \
            if self.devices or root.find("devices") is not None else []
        ET.indent(root)
        text = ET.tostring(root, encoding="unicode")
        self.tree = root
        for device, el in zip(self.devices, placed, strict=True):
            device.origin = el
        return text

    def _write_sizes(self, root: Element) -> None:
        # Rewritten only when changed, so a foreign domain's units and extras stay as they are.
        memory = root.find("memory")
        if memory is None or memory_kib(memory, "memory") // 1024 != self.memory_mib:
            self.set_memory(self.memory_mib)  # refuses a count below one
            for tag in ("memory", "currentMemory"):
                if tag == "memory" or root.find(tag) is not None:
                    found = child(root, tag)
                    found.attrib = {"unit": "MiB"}
                    found.text = str(self.memory_mib)
        vcpu = root.find("vcpu")
        if vcpu is None or _read_vcpus(vcpu) != self.vcpus:
            self.set_vcpus(self.vcpus)
            vcpu = child(root, "vcpu")
            vcpu.text = str(self.vcpus)
            vcpu.attrib.pop("current", None)
            # Per-vCPU settings and a topology for another count would make libvirt refuse
            # the domain; without them it gives each vCPU a socket of its own.
            drop(root, "vcpus")
            cpu = root.find("cpu")
            if cpu is not None:
                drop(cpu, "topology")

    def _write_cpu(self, root: Element) -> None:
        if self.cpu_mode is None:
            drop(root, "cpu")
            return
        cpu = child(root, "cpu")
        if cpu.get("mode") != self.cpu_mode:
            # Another mode's model and match rule mean nothing under this one.
            drop(cpu, "model")
            cpu.attrib.pop("match", None)
            set_attr(cpu, "mode", self.cpu_mode, "the CPU mode")


def _write_devices(parent: Element, devices: list[Device],
                   origins: list[Element | None]) -> list[Element]:
    """Each device written on the element it was read from, where it is, so an unchanged
    domain comes out in its own order; removed ones go, and a new one (or a copy of one
    read elsewhere) goes after the last of its kind.  The rest (controllers, consoles...)
    is not touched.  Returns each device's element."""
    wanted = {id(el) for el in origins if el is not None}
    for el in list(parent):
        if is_device(el) and id(el) not in wanted:
            parent.remove(el)
    present = {id(el) for el in parent}
    placed = []
    for device, origin in zip(devices, origins, strict=True):
        if origin is not None and id(origin) in present:
            present.discard(id(origin))  # a second device sharing it gets a copy
            device.write(origin)
            placed.append(origin)
            continue
        el = new_element(device) if origin is None else deepcopy(origin)
        device.write(el)
        last = max((i for i, c in enumerate(parent) if c.tag == el.tag), default=None)
        parent.insert(len(parent) if last is None else last + 1, el)
        placed.append(el)
    return placed


def _read_vcpus(vcpu: Element) -> int:
    """The vCPUs the VM boots with: `current` when it is below the maximum."""
    return to_int(vcpu.get("current") or vcpu.text, "vCPU count", minimum=1)


def _read_boot(os_el: Element | None) -> Boot:
    if os_el is None:
        return Boot(arch=None, machine=None, os_type="")
    os_type = os_el.find("type")
    return Boot(arch=attr(os_type, "arch"), machine=attr(os_type, "machine"),
                kernel=os_el.findtext("kernel"), initrd=os_el.findtext("initrd"),
                cmdline=os_el.findtext("cmdline"),
                devices=[b.get("dev", "") for b in os_el.findall("boot")],
                firmware=os_el.get("firmware"),
                os_type=(os_type.text or "") if os_type is not None else "",
                loader=os_el.findtext("loader"), nvram=os_el.findtext("nvram"),
                nvram_template=attr(os_el.find("nvram"), "template"))


def _write_boot(os_el: Element, boot: Boot) -> None:
    set_attr(os_el, "firmware", boot.firmware, "the VM's firmware")
    os_type = child(os_el, "type")
    set_attr(os_type, "arch", boot.arch, "the VM's architecture")
    set_attr(os_type, "machine", boot.machine, "the VM's machine type")
    os_type.text = checked_text(boot.os_type, "the VM's OS type")
    set_child_text(os_el, "kernel", boot.kernel, "the VM's kernel")
    set_child_text(os_el, "initrd", boot.initrd, "the VM's initrd")
    set_child_text(os_el, "cmdline", boot.cmdline, "the VM's kernel command line")
    if os_el.findtext("loader") != boot.loader:
        set_child_text(os_el, "loader", boot.loader, "the VM's firmware")
        if boot.loader is not None:
            loader = child(os_el, "loader")
            loader.set("readonly", "yes")
            loader.set("type", "pflash")
    if (os_el.findtext("nvram"), attr(os_el.find("nvram"), "template")) != \
            (boot.nvram, boot.nvram_template):
        set_child_text(os_el, "nvram", boot.nvram, "the VM's NVRAM")
        if boot.nvram is not None:
            set_attr(child(os_el, "nvram"), "template", boot.nvram_template,
                     "the VM's NVRAM template")
    if [b.get("dev", "") for b in os_el.findall("boot")] != boot.devices:
        drop(os_el, "boot")
        for dev in boot.devices:
            set_attr(SubElement(os_el, "boot"), "dev", dev, "the VM's boot device")


def _write_features(root: Element, names: list[str]) -> None:
    if not names:
        drop(root, "features")
        return
    features = child(root, "features")
    for el in list(features):
        if el.tag not in names:
            features.remove(el)
    for name in names:
        if features.find(name) is None:
            # A tag, which ElementTree writes as given: only a plain XML name may become one.
            if not _FEATURE.fullmatch(name):
                raise UsageError(f"{name[:40]!r} is not a feature's name",
                                 hint="name a libvirt feature such as acpi")
            SubElement(features, name)
