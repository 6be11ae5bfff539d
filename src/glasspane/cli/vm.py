"""`glasspane vm ...`: VMs on a host."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import click

from glasspane.cli.generated import catalogue_command
from glasspane.cli.operations import host_option, json_option, local_only, operations
from glasspane.cli.table import echo_each, echo_fields, emit_json
from glasspane.cli.vm_hardware import boot_disk, hardware_fields, parse_disk, parse_nic
from glasspane.enums import Firmware, VmAction, VmDefaults
from glasspane.errors import UsageError
from glasspane.operations.vms import CreatedVm, Power, PowerResult, Resources, ResourcesSet
from glasspane.vms.service import MAX_PARALLEL_CREATES, check_name, parse_labels


@click.group()
def vm() -> None:
    """VMs: linked clones of templates, personalized by cloud-init."""


def _read(path: str | None) -> str | None:
    return Path(path).read_text() if path else None


@vm.command()
@click.argument("name")
@click.option("--template", required=True, help="Template to clone.")
@host_option
@click.option("--cpus", type=click.IntRange(1, 64), default=VmDefaults.CPUS, show_default=True)
@click.option("--memory", "memory_mib", type=click.IntRange(128, 1 << 20),
              default=VmDefaults.MEMORY_MIB,
              show_default=True, help="MiB.")
@click.option("--disk", "disks", multiple=True, metavar="SIZE[:BUS]",
              help="The first: its disk's size in GiB (default: the template's); each next "
                   "one an empty data disk on virtio, scsi or sata (repeatable).")
@click.option("--ssh-key", "ssh_keys", multiple=True, type=click.Path(dir_okay=False),
              help="Public key file for the default user (repeatable).")
@click.option("--user-data", type=click.Path(dir_okay=False), help="cloud-init user-data.")
@click.option("--network-config", type=click.Path(dir_okay=False),
              help="cloud-init network-config.")
@click.option("--timeout", type=click.IntRange(1, 3600), default=300, show_default=True,
              help="Seconds to wait for SSH to answer.")
@click.option("--count", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Create NAME-1 .. NAME-N in parallel.")
@click.option("--full", is_flag=True, help="A full copy of the template, not a linked clone.")
@click.option("--no-wait", is_flag=True,
              help="Return once the VM has an address; do not wait for SSH and cloud-init.")
@click.option("--network", help="The network to connect the VM to (libvirt: `default`; "
                                "XenServer: the template's, or a network's name or bridge).")
@click.option("--label", "-l", "labels", multiple=True, metavar="KEY=VALUE",
              help="A label kept with the VM (repeatable): `inventory` groups by it, "
                   "`vm configure --label` selects by it.")
@click.option("--nic", "nics", multiple=True, metavar="NETWORK[:MAC]",
              help="A NIC on NETWORK (repeatable; default: one on --network).")
@click.option("--firmware", type=click.Choice([f.value for f in Firmware]),
              default=Firmware.BIOS.value, show_default=True,
              help="uefi: OVMF, with its own NVRAM.")
def create(name: str, template: str, host: str, cpus: int, memory_mib: int,
           disks: tuple[str, ...], ssh_keys: tuple[str, ...], user_data: str | None,
           network_config: str | None, timeout: int, count: int, full: bool,
           no_wait: bool, network: str | None, labels: tuple[str, ...],
           nics: tuple[str, ...], firmware: str) -> None:
    """Create VM NAME from a template, start it and wait until SSH answers."""
    names = [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
    for each in names:
        check_name(each)
    ops, fields = operations(), {
        "template": template, "host": host, "cpus": cpus, "memory_mib": memory_mib,
        "disk_gib": boot_disk(disks), "ssh_keys": [Path(k).read_text().strip() for k in ssh_keys],
        "user_data": _read(user_data), "network_config": _read(network_config),
        "labels": parse_labels(labels), "network": network, "full": full,
        "wait_ready": not no_wait, "timeout": timeout, "firmware": firmware,
        "disks": [parse_disk(d) for d in disks[1:]], "nics": [parse_nic(n) for n in nics]}

    def shown(done: CreatedVm) -> str:
        return (f"created VM {done.name} on {done.host}: {(done.addresses or ['?'])[0]}"
                + (f" ({done.ssh})" if done.ssh else ""))
    if count == 1:  # its error is the command's, with its exit status; its progress shown
        click.echo(shown(ops.run("vm.create", False, name=name, **fields)))
    else:  # in parallel, each its own line
        echo_each(names, lambda each: ops.run("vm.create", name=each, **fields), "VM ",
                  shown=shown, workers=MAX_PARALLEL_CREATES)


@vm.command("list")
@host_option
@json_option
def list_vms(host: str, as_json: bool) -> None:
    """VMs on a host, with their power state and addresses."""
    rows = operations().vm_list(host)
    if as_json:
        emit_json(rows)
        return
    for row in rows:
        tags = " ".join(f"{k}={v}" for k, v in sorted(row.labels.items()))
        click.echo(f"{row.name}  {row.power_state}  {' '.join(row.addresses)}"
                   + (f"  {tags}" if tags else ""))


catalogue_command(vm, "vm.destroy", arguments=("name...",), prefix="VM ",
                  echo=lambda done, command: f"VM {command.name}: destroyed")


def _power(done: PowerResult, command: Power) -> str:
    forced = f" (forced: the guest ignored shutdown for {command.timeout} s)"
    return f"VM {command.name}: {done.power_state}{forced if done.graceful is False else ''}"


for _action in (VmAction.START, VmAction.SHUTDOWN, VmAction.REBOOT, VmAction.PAUSE,
                VmAction.SUSPEND, VmAction.RESUME):
    catalogue_command(vm, f"vm.{_action}", arguments=("name...",), prefix="VM ", echo=_power,
                      omit=() if _action is VmAction.SHUTDOWN else ("timeout",))
catalogue_command(vm, "vm.snapshot", arguments=("name", "snapshot"),
                  echo=lambda done, command: f"VM {command.name}: snapshot {done.snapshot} taken")
catalogue_command(vm, "vm.revert", arguments=("name", "snapshot"),
                  echo=lambda done, command: f"VM {command.name}: reverted to {done.snapshot}")


def _something_to_change(fields: dict[str, Any]) -> None:
    if fields["cpus"] is None and fields["memory_mib"] is None:
        raise UsageError("nothing to change", hint="give --cpus, --memory or both")


def _changed(done: ResourcesSet, command: Resources) -> str:
    changed = ", ".join(part for part in (f"{done.cpus} vCPUs" if done.cpus else "",
                                          f"{done.memory_mib} MiB" if done.memory_mib else "")
                        if part)
    return f"VM {command.name}: {changed} from its next boot"


catalogue_command(vm, "vm.set", arguments=("name",), options={"memory_mib": ["--memory"]},
                  check=_something_to_change, echo=_changed)


@vm.command()
@click.argument("name")
@host_option
@json_option
def info(name: str, host: str, as_json: bool) -> None:
    """Power state, addresses, disk, snapshots, hardware and console log of VM NAME."""
    found = dataclasses.asdict(operations().vm_info(name, host))
    for key in ("template", "labels", "containers"):  # what only the server knows
        if found[key] is None:
            del found[key]
    found.update(hardware_fields(name, host, as_json))
    if as_json:
        emit_json(found)
    else:
        echo_fields([(k.replace("_", " "), v) for k, v in found.items()], 12, " ")


@vm.command()
@click.argument("name")
@host_option
@click.option("--log", "log", is_flag=True,
              help="Print the end of the console's log instead of attaching.")
@click.option("--lines", type=int, default=50, show_default=True,
              help="With --log: how many lines.")
def console(name: str, host: str, log: bool, lines: int) -> None:
    """Attach this terminal to VM NAME's serial console (Ctrl-] leaves); --log prints the
    end of its log instead."""
    if log:
        click.echo(operations().vm_console(name, host, lines))
        return
    from glasspane.cli.console_attach import attach
    attach(operations().vm_console_link(name, host), name)


@vm.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@host_option
@click.option("--user", default="debian", show_default=True)
@click.option("--identity", "-i", type=click.Path(dir_okay=False), help="Private key file.")
@local_only(lambda params: not params["command"],
            "an interactive session needs a terminal to the VM itself",
            "run `glasspane vm ssh` without --server where the VM is reachable, or give "
            "`-- COMMAND`")
def ssh(name: str, command: tuple[str, ...], host: str, user: str, identity: str | None) -> None:
    """SSH into VM NAME, or run `-- COMMAND` there; exits with ssh's status (with
    --server: `-- COMMAND` runs through the server as glasspane's user)."""
    done = operations().vm_ssh(name, host, list(command), user, identity)
    click.echo(done.output, nl=False)
    if done.truncated:
        click.echo("glasspane: output cut at 1 MiB", err=True)
    raise click.exceptions.Exit(done.exit_code)


@vm.command()
@click.argument("vms", nargs=-1)
@click.argument("playbook", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--label", "-l", metavar="KEY[=VALUE]",
              help="Every running VM with this label (beside any VMs named).")
@click.option("--extra-var", "-e", "extra", multiple=True, metavar="NAME=VALUE",
              help="A variable for the playbook (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="Only the recap, not the playbook's output.")
def configure(vms: tuple[str, ...], playbook: Path, label: str | None,
              extra: tuple[str, ...], quiet: bool) -> None:
    """Run an Ansible PLAYBOOK against running VMs (named, or by --label)."""
    extra_vars = {}
    for pair in extra:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--extra-var {pair!r}: expected NAME=VALUE")
        extra_vars[key] = value
    done = operations().vm_configure(list(vms), label, playbook, extra_vars, quiet)
    if done.recap is not None:
        click.echo(done.recap)
    click.echo(f"configured {', '.join(done.vms)}{done.note}")


@vm.command("export")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@host_option
@click.option("--to", "to", help="Output format (default: from FILE's extension).")
@click.option("--disk", type=int, default=0, show_default=True,
              help="Which disk, for a disk format (XVA and OVA take the whole VM).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def export(name: str, file: str, host: str, to: str | None, disk: int, force: bool,
           quiet: bool) -> None:
    """Export halted VM NAME to FILE: XVA or OVA (the whole VM), qcow2, VHD, VMDK or raw
    (with --server: FILE is downloaded from the server, or `@NAME` stays in its store)."""
    done = operations().vm_export(name, host, file, to, disk, force, quiet)
    click.echo(f"exported VM {name} from {host} to {file} ({done.format}, {done.size} bytes"
               + (f", sha256 {done.sha256})" if done.sha256 else ")"))
