"""`glasspane vm disk|nic|cdrom ...` and `vm hardware`: a VM's hardware, each command one
catalogue call (`operations().run("vm.disk.add", ...)`), local or through --server alike."""

from __future__ import annotations

from pathlib import Path

import click

from glasspane.cli.operations import host_option, json_option, operations, server_of
from glasspane.cli.table import emit_json
from glasspane.enums import DiskBus, HardwareLimits, NicModel
from glasspane.errors import GlasspaneError, UsageError
from glasspane.operations.hardware import Changed, HardwareView


def parse_disk(value: str) -> dict[str, object]:
    """`SIZE[:BUS]` (GiB, virtio when no bus) as a data disk of `vm create`."""
    size, _, bus = value.partition(":")
    if not size.isascii() or not size.isdigit() or \
            not 1 <= int(size) <= HardwareLimits.DISK_GIB:
        raise UsageError(f"--disk {value[:40]!r}: SIZE is a whole number of GiB, 1 to "
                         f"{HardwareLimits.DISK_GIB}", hint="for example --disk 10:scsi")
    if bus and bus not in set(DiskBus):
        raise UsageError(f"--disk {value[:40]!r}: no bus {bus[:20]!r}",
                         hint="one of " + ", ".join(DiskBus))
    return {"size_gib": int(size), "bus": bus or DiskBus.VIRTIO}


def boot_disk(values: tuple[str, ...]) -> int | None:
    """The first `--disk`: the size of the VM's own disk (over the template's: virtio)."""
    if not values:
        return None
    first = parse_disk(values[0])
    if first["bus"] != DiskBus.VIRTIO:
        raise UsageError(f"--disk {values[0][:40]!r}: the first --disk is the VM's own disk, "
                         "which stays on virtio", hint="give its size alone, then the others")
    return int(str(first["size_gib"]))


def parse_nic(value: str) -> dict[str, object]:
    """`NETWORK[:MAC]` as a NIC of `vm create` (a MAC holds colons: split at the first)."""
    network, _, mac = value.partition(":")
    if not network:
        raise UsageError(f"--nic {value[:40]!r}: no network", hint="--nic default[:MAC]")
    return {"network": network, "mac": mac or None}


def _said(name: str, what: str, done: Changed) -> None:
    click.echo(f"VM {name}: {what} {done.device} ({done.applies})")


def hardware_command(name: str, host: str, as_json: bool) -> None:
    """VM NAME's disks, CD drives, NICs, firmware and boot order."""
    found: HardwareView = operations().run("vm.hardware", host=host, name=name)
    if as_json:
        emit_json(found.model_dump(mode="json"))
        return
    click.echo(f"firmware  {found.firmware}    boot  {' '.join(found.boot_order)}")
    for disk in found.disks:
        click.echo(f"disk  {disk.device}  {disk.size >> 20} MiB  {disk.bus}  {disk.format}  "
                   f"{disk.volume}{'  (boot)' if disk.boot else ''}")
    for cd in found.cdroms:
        click.echo(f"cdrom {cd.device}  {cd.image or '(empty)'}")
    for nic in found.nics:
        click.echo(f"nic   {nic.mac}  {nic.network}  {nic.model}")


def hardware_fields(name: str, host: str, as_json: bool) -> dict[str, object]:
    """`vm info`'s hardware: the whole view in JSON, a line per device in text; nothing
    where the host cannot say (its driver's error is the `vm hardware` command's to show)."""
    try:
        found: HardwareView = operations().run("vm.hardware", host=host, name=name)
    except GlasspaneError:
        return {}
    if as_json:
        return {"hardware": found.model_dump(mode="json")}
    return {"firmware": str(found.firmware), "boot order": found.boot_order,
            "disks": [f"{d.device}:{d.size >> 20}MiB:{d.bus}" for d in found.disks],
            "cdroms": [f"{c.device}:{c.image or '-'}" for c in found.cdroms],
            "nics": [f"{n.mac}:{n.network}" for n in found.nics]}


@click.group()
def disk() -> None:
    """A VM's disks: add, grow, remove."""


@disk.command("add")
@click.argument("name")
@click.argument("size_gib", metavar="SIZE_GIB", type=click.IntRange(1, HardwareLimits.DISK_GIB))
@click.option("--bus", type=click.Choice([b.value for b in DiskBus]),
              default=DiskBus.VIRTIO.value, show_default=True,
              help="virtio and scsi plug into a running VM; sata waits for its next boot.")
@host_option
def disk_add(name: str, size_gib: int, bus: str, host: str) -> None:
    """Add an empty disk of SIZE_GIB GiB to VM NAME."""
    _said(name, "disk", operations().run("vm.disk.add", host=host, name=name,
                                         size_gib=size_gib, bus=bus))


@disk.command("resize")
@click.argument("name")
@click.argument("device")
@click.argument("size_gib", metavar="SIZE_GIB", type=click.IntRange(1, HardwareLimits.DISK_GIB))
@host_option
def disk_resize(name: str, device: str, size_gib: int, host: str) -> None:
    """Grow disk DEVICE (vdb, sdc...) of VM NAME to SIZE_GIB GiB (never shrinks)."""
    _said(name, "grew disk", operations().run("vm.disk.resize", host=host, name=name,
                                              device=device, size_gib=size_gib))


@disk.command("remove")
@click.argument("name")
@click.argument("device")
@host_option
def disk_remove(name: str, device: str, host: str) -> None:
    """Detach disk DEVICE of VM NAME and delete it."""
    _said(name, "removed disk", operations().run("vm.disk.remove", host=host, name=name,
                                                 device=device))


@click.group()
def nic() -> None:
    """A VM's network interfaces: add, remove."""


@nic.command("add")
@click.argument("name")
@click.argument("network")
@click.option("--mac", help="Its MAC (unicast; default: the host picks one).")
@click.option("--model", type=click.Choice([m.value for m in NicModel]),
              default=NicModel.VIRTIO.value, show_default=True)
@host_option
def nic_add(name: str, network: str, mac: str | None, model: str, host: str) -> None:
    """Add a NIC on NETWORK to VM NAME."""
    _said(name, "NIC", operations().run("vm.nic.add", host=host, name=name, network=network,
                                        mac=mac, model=model))


@nic.command("remove")
@click.argument("name")
@click.argument("mac")
@host_option
def nic_remove(name: str, mac: str, host: str) -> None:
    """Remove the NIC with MAC from VM NAME."""
    _said(name, "removed NIC", operations().run("vm.nic.remove", host=host, name=name,
                                                mac=mac))


@click.group()
def cdrom() -> None:
    """A VM's CD drive: insert an ISO of the image store, eject it."""


@cdrom.command("insert")
@click.argument("name")
@click.argument("image")
@host_option
def cdrom_insert(name: str, image: str, host: str) -> None:
    """Put ISO IMAGE in VM NAME's CD drive: its name in the image store, or without
    --server an ISO file of this machine (copied into this machine's store)."""
    if server_of(click.get_current_context()) is None and \
            ("/" in image or Path(image).is_file()):
        from glasspane.settings import Settings
        from glasspane.vms.hardware import store_local_iso
        image = store_local_iso(Settings.load(), Path(image))
    _said(name, f"{image} in CD drive", operations().run("vm.cdrom.insert", host=host,
                                                         name=name, image=image))


@cdrom.command("eject")
@click.argument("name")
@host_option
def cdrom_eject(name: str, host: str) -> None:
    """Empty VM NAME's CD drive."""
    _said(name, "ejected CD drive", operations().run("vm.cdrom.eject", host=host, name=name))


def register(group: click.Group) -> None:
    """The commands on the `vm` group."""
    for each in (disk, nic, cdrom):
        group.add_command(each)
    group.command("hardware")(click.argument("name")(host_option(json_option(
        hardware_command))))
