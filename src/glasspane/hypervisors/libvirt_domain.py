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
    Metadata,
    Nic,
    Rng,
    Serial,
    read_metadata,
)

__all__ = ["METADATA_NS", "METADATA_PREFIX", "SERIAL_LOG_DIR", "domain_xml", "glasspane_domain",
           "parse_metadata", "serial_log"]

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
                Serial(kind="file", path=serial_log(spec.name), port=0),
                Rng(model="virtio", source="/dev/urandom")]
    kvm = accel == "kvm"
    return Domain(name=spec.name, vcpus=spec.cpus, memory_mib=spec.memory_mib,
                  hypervisor="kvm" if kvm else "qemu",
                  cpu_mode="host-passthrough" if kvm else None,
                  boot=Boot(kernel=spec.kernel, initrd=spec.initrd, cmdline=spec.cmdline),
                  metadata=Metadata(spec.template, dict(spec.labels)), devices=devices)


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
