"""The libvirt domain XML for a glasspane VM (kept apart from the driver's I/O)."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET

from glasspane.hypervisors.base import VmSpec

SERIAL_LOG_DIR = "/var/log/libvirt/qemu"
# glasspane's own element in the domain's <metadata>: the template and the labels, kept with
# the VM on its host so that any glasspane (or a restarted one) reads them back.
METADATA_NS = "https://glasspane.dev/xmlns/vm/1"
METADATA_PREFIX = "glasspane"


def metadata_xml(template: str | None, labels: dict[str, str], prefix: str = "") -> str:
    """Our metadata element (libvirt wants a namespace prefix inside a domain's XML, and
    gives the element back without one)."""
    p = f"{prefix}:" if prefix else ""
    items = "".join(f"<{p}label name={quoteattr(k)}>{escape(v)}</{p}label>"
                    for k, v in sorted(labels.items()))
    body = (f"<{p}template>{escape(template)}</{p}template>" if template else "") + items
    xmlns = f"xmlns:{prefix}" if prefix else "xmlns"
    return f"<{p}vm {xmlns}={quoteattr(METADATA_NS)}>{body}</{p}vm>"


def parse_metadata(xml: str) -> tuple[str | None, dict[str, str]]:
    """(template, labels) from our metadata element; a foreign or broken one means none."""
    try:
        root = SafeET.fromstring(xml)
    except SafeET.ParseError:
        return None, {}
    ns = f"{{{METADATA_NS}}}"
    template = root.findtext(f"{ns}template") or root.findtext("template")
    labels = {str(e.get("name")): e.text or ""
              for e in [*root.findall(f"{ns}label"), *root.findall("label")]
              if e.get("name")}
    return template, labels


def serial_log(name: str) -> str:
    return f"{SERIAL_LOG_DIR}/{name}-serial.log"


def domain_xml(spec: VmSpec, accel: str) -> str:
    boot = ""
    if spec.kernel:
        boot += f"<kernel>{escape(spec.kernel)}</kernel>"
    if spec.initrd:
        boot += f"<initrd>{escape(spec.initrd)}</initrd>"
    if spec.cmdline:
        boot += f"<cmdline>{escape(spec.cmdline)}</cmdline>"
    seed = ""
    if spec.seed:
        seed = (f"<disk type='file' device='cdrom'><driver name='qemu' type='raw'/>"
                f"<source file={quoteattr(spec.seed)}/><target dev='sda' bus='sata'/>"
                f"<readonly/></disk>")
    cpu = "<cpu mode='host-passthrough'/>" if accel == "kvm" else ""
    metadata = metadata_xml(spec.template, spec.labels, METADATA_PREFIX)
    return f"""<domain type={quoteattr('kvm' if accel == 'kvm' else 'qemu')}>
  <name>{escape(spec.name)}</name>
  <metadata>{metadata}</metadata>
  <memory unit='MiB'>{spec.memory_mib}</memory>
  <vcpu>{spec.cpus}</vcpu>
  <os><type arch='x86_64' machine='q35'>hvm</type>{boot}</os>
  <features><acpi/><apic/></features>
  {cpu}
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff><on_reboot>restart</on_reboot><on_crash>destroy</on_crash>
  <devices>
    <disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
      <source file={quoteattr(spec.disk)}/><target dev='vda' bus='virtio'/></disk>
    {seed}
    <interface type='network'><source network={quoteattr(spec.network)}/>
      <model type='virtio'/></interface>
    <serial type='file'><source path={quoteattr(serial_log(spec.name))}/>
      <target port='0'/></serial>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
  </devices>
</domain>"""
