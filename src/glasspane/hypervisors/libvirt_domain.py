"""The libvirt domain of a glasspane VM, made from its VmSpec (kept apart from the driver's
I/O; the model and its XML live in glasspane.hypervisors.domainxml)."""

from __future__ import annotations

import defusedxml.ElementTree as SafeET

from glasspane.hypervisors.base import VmSpec
from glasspane.hypervisors.domainxml import (
    METADATA_NS,
    METADATA_PREFIX,
    Boot,
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

__all__ = ["METADATA_NS", "METADATA_PREFIX", "SERIAL_LOG_DIR", "domain_xml", "glasspane_domain",
           "parse_metadata", "serial_log", "with_consoles"]

SERIAL_LOG_DIR = "/var/log/libvirt/qemu"
# Where a VM's disks appear in the guest: its disk first, the cloud-init seed as a CD.
DISK_TARGET = "vda"
SEED_TARGET = "sda"


def serial_log(name: str) -> str:
    return f"{SERIAL_LOG_DIR}/{name}-serial.log"


def glasspane_domain(spec: VmSpec, accel: str) -> Domain:
    """The domain of a new VM: under KVM with the host's CPU, else emulated (TCG)."""
    devices: list[Device] = [Disk(path=spec.disk, target=DISK_TARGET, bus="virtio",
                                  format="qcow2")]
    if spec.seed:
        devices.append(Disk(path=spec.seed, target=SEED_TARGET, bus="sata", format="raw",
                            device="cdrom", readonly=True))
    devices += [Nic(network=spec.network, model="virtio"),
                Rng(model="virtio", source="/dev/urandom")]
    kvm = accel == "kvm"
    domain = Domain(name=spec.name, vcpus=spec.cpus, memory_mib=spec.memory_mib,
                    hypervisor="kvm" if kvm else "qemu",
                    cpu_mode="host-passthrough" if kvm else None,
                    boot=Boot(kernel=spec.kernel, initrd=spec.initrd, cmdline=spec.cmdline),
                    metadata=Metadata(spec.template, dict(spec.labels)), devices=devices)
    with_consoles(domain)
    return domain


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
