"""The libvirt domain of a glasspane VM, made from its VmSpec (kept apart from the driver's
I/O; the model and its XML live in glasspane.hypervisors.domainxml)."""

from __future__ import annotations

import defusedxml.ElementTree as SafeET

from glasspane.enums import Firmware
from glasspane.hypervisors.base import VmSpec
from glasspane.hypervisors.domainxml import (
    METADATA_NS,
    METADATA_PREFIX,
    Boot,
    Controller,
    Device,
    Disk,
    Domain,
    Graphics,
    Metadata,
    Nic,
    Rng,
    Serial,
    Video,
    read_metadata,
)

__all__ = [
    "METADATA_NS",
    "METADATA_PREFIX",
    "OTHER_PCIE_DEVICES",
    "OVMF_CODE",
    "OVMF_VARS",
    "SERIAL_LOG_DIR",
    "SPARE_ROOT_PORTS",
    "domain_xml",
    "glasspane_domain",
    "parse_metadata",
    "serial_log",
    "with_consoles",
]

SERIAL_LOG_DIR = "/var/log/libvirt/qemu"
# Where a VM's disks appear in the guest: its disk first, the cloud-init seed as a CD.
DISK_TARGET = "vda"
SEED_TARGET = "sda"
CD_TARGET = "sdb"    # an empty CD drive of its own, for ISOs (its media change live)
# Debian's `ovmf`: the UEFI firmware's code, and the variable store each VM gets a copy of.
OVMF_CODE = "/usr/share/OVMF/OVMF_CODE_4M.fd"
OVMF_VARS = "/usr/share/OVMF/OVMF_VARS_4M.fd"
# A q35 machine hot-plugs a PCIe device only into a free root port, and libvirt makes none
# spare: it puts each PCIe device into a port of those defined, and adds ports only for the
# devices that find none.  So the domain defines one port per device it has (each virtio
# disk and NIC, and OTHER_PCIE_DEVICES: the SCSI controller, the RNG, the USB controller,
# the memory balloon and the console's video card) and SPARE_ROOT_PORTS more: the room for
# disks and NICs added while the VM runs.
SPARE_ROOT_PORTS = 6
OTHER_PCIE_DEVICES = 5


def serial_log(name: str) -> str:
    return f"{SERIAL_LOG_DIR}/{name}-serial.log"


def glasspane_domain(spec: VmSpec, accel: str) -> Domain:
    """The domain of a new VM: under KVM with the host's CPU, else emulated (TCG)."""
    devices: list[Device] = [Disk(path=spec.disk, target=DISK_TARGET, bus="virtio",
                                  format="qcow2")]
    if spec.seed:
        devices.append(Disk(path=spec.seed, target=SEED_TARGET, bus="sata", format="raw",
                            device="cdrom", readonly=True))
    devices.append(Disk(path=None, target=CD_TARGET, bus="sata", format="raw", device="cdrom",
                        readonly=True))
    nics = [Nic(network=n.network, mac=n.mac, model=str(n.model)) for n in spec.nics] or \
        [Nic(network=spec.network, model="virtio")]
    devices += [*nics, Rng(model="virtio", source="/dev/urandom"),
                Controller(kind="scsi", model="virtio-scsi"),
                # The root first, or libvirt would take the first port for index 0.
                Controller(model="pcie-root", index=0),
                *(Controller(model="pcie-root-port")
                  for _ in range(_root_ports(spec)))]
    kvm = accel == "kvm"
    boot = Boot(kernel=spec.kernel, initrd=spec.initrd, cmdline=spec.cmdline)
    if spec.firmware == Firmware.UEFI:
        boot.loader, boot.nvram_template = OVMF_CODE, OVMF_VARS
        boot.nvram = spec.nvram
    domain = Domain(name=spec.name, vcpus=spec.cpus, memory_mib=spec.memory_mib,
                    hypervisor="kvm" if kvm else "qemu",
                    cpu_mode="host-passthrough" if kvm else None, boot=boot,
                    metadata=Metadata(spec.template, dict(spec.labels)), devices=devices)
    for extra in spec.data_disks:  # each at the next free name on its bus
        domain.add_disk(Disk(path=extra.path, bus=str(extra.bus), format=extra.format))
    with_consoles(domain)
    return domain


def _root_ports(spec: VmSpec) -> int:
    virtio = 1 + sum(1 for d in spec.data_disks if d.bus == "virtio")
    return virtio + max(1, len(spec.nics)) + OTHER_PCIE_DEVICES + SPARE_ROOT_PORTS


def with_consoles(domain: Domain) -> bool:
    """Give `domain` what its consoles need, if it lacks it; whether it changed.

    - a serial port one can type into: a pty (what virDomainOpenConsole attaches to), its
      output still copied to the console log; a VM glasspane made before, whose port wrote
      only to that file, has its port turned into such a pty;
    - a VNC screen on a unix socket in the VM's own directory (libvirt picks the path when
      it starts): no port to collide with another VM's, nothing on any network;
    - a video card for it to show.
    Other graphics (a foreign VM's SPICE, VNC on an address its owner chose) stay as they are.
    """
    changed = False
    serials = [d for d in domain.devices if isinstance(d, Serial)]
    log = serial_log(domain.name)
    for port in serials:
        if port.kind == "file" and port.path == log:  # glasspane's log-only port
            port.kind, port.path, port.log = "pty", None, log
            changed = True
    if not serials:
        domain.devices.append(Serial(kind="pty", port=0, log=log))
        changed = True
    if not any(isinstance(d, Graphics) for d in domain.devices):
        domain.devices.append(Graphics(kind="vnc", listen=None, socket=""))
        changed = True
    if not any(isinstance(d, Video) for d in domain.devices):
        domain.devices.append(Video(model="virtio"))
        changed = True
    return changed


def domain_xml(spec: VmSpec, accel: str) -> str:
    return glasspane_domain(spec, accel).to_xml()


def parse_metadata(xml: str) -> tuple[str | None, dict[str, str]]:
    """(template, labels) from our metadata element as libvirt's metadata call gives it;
    a foreign or broken one means none."""
    try:
        meta = read_metadata(SafeET.fromstring(xml))
    except (SafeET.ParseError, ValueError):
        return None, {}
    return (meta.template, meta.labels) if meta else (None, {})
