"""The libvirt domain XML for a glasspane VM (kept apart from the driver's I/O)."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from glasspane.hypervisors.base import VmSpec

SERIAL_LOG_DIR = "/var/log/libvirt/qemu"


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
    return f"""<domain type={quoteattr('kvm' if accel == 'kvm' else 'qemu')}>
  <name>{escape(spec.name)}</name>
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
