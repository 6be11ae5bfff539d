"""`glasspane vm create|list|destroy`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path

import click

from glasspane.settings import Settings
from glasspane.vms import service


@click.group()
def vm() -> None:
    """VMs: linked clones of templates, personalized by cloud-init."""


def _read(path: str | None) -> str | None:
    return Path(path).read_text() if path else None


@vm.command()
@click.argument("name")
@click.option("--template", required=True, help="Template to clone.")
@click.option("--host", default="local", show_default=True)
@click.option("--cpus", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--memory", "memory_mib", type=click.IntRange(128, 1 << 20), default=512,
              show_default=True, help="MiB.")
@click.option("--disk", "disk_gib", type=click.IntRange(1, 65536),
              help="Disk size in GiB (default: the template's).")
@click.option("--ssh-key", "ssh_keys", multiple=True, type=click.Path(dir_okay=False),
              help="Public key file for the default user (repeatable).")
@click.option("--user-data", type=click.Path(dir_okay=False), help="cloud-init user-data.")
@click.option("--network-config", type=click.Path(dir_okay=False),
              help="cloud-init network-config.")
@click.option("--timeout", type=float, default=300, show_default=True,
              help="Seconds to wait for SSH to answer.")
@click.option("--count", type=click.IntRange(1, 100), default=1, show_default=True,
              help="Create NAME-1 .. NAME-N in parallel.")
@click.option("--full", is_flag=True, help="A full copy of the template, not a linked clone.")
def create(name: str, template: str, host: str, cpus: int, memory_mib: int,
           disk_gib: int | None, ssh_keys: tuple[str, ...], user_data: str | None,
           network_config: str | None, timeout: float, count: int, full: bool) -> None:
    """Create VM NAME from a template, start it and wait until SSH answers."""
    keys = [Path(k).read_text().strip() for k in ssh_keys]
    names = [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
    requests = [service.VmRequest(n, template, cpus, memory_mib, disk_gib, keys,
                                  _read(user_data), _read(network_config), not full)
                for n in names]
    settings = Settings.load()
    if count == 1:
        results: list[service.CreatedVm | Exception] = [
            service.create_vm(settings, requests[0], host, timeout)]
    else:
        results = service.create_vms(settings, requests, host, timeout)
    failed = 0
    for request, result in zip(requests, results, strict=True):
        if isinstance(result, Exception):
            failed += 1
            click.echo(f"glasspane: error: VM {request.name}: {result}", err=True)
            continue
        address = result.addresses[0] if result.addresses else "?"
        click.echo(f"created VM {result.name} on {result.host}: {address} ({result.ssh})")
    if failed:
        raise click.exceptions.Exit(5)


@vm.command("list")
@click.option("--host", default="local", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_vms(host: str, as_json: bool) -> None:
    """VMs on a host, with their power state and addresses."""
    rows = service.list_vms(Settings.load(), host)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        addresses = row["addresses"]
        assert isinstance(addresses, list)
        click.echo(f"{row['name']}  {row['power_state']}  {' '.join(addresses)}")


def _each(names: tuple[str, ...], action: Callable[[str], str]) -> None:
    """Apply `action` to every VM in parallel; one line per VM, exit 5 if any failed."""
    failed = 0
    for name, result in service.on_each(list(names), action):
        if isinstance(result, Exception):
            failed += 1
            click.echo(f"glasspane: error: VM {name}: {result}", err=True)
        else:
            click.echo(f"VM {name}: {result}")
    if failed:
        raise click.exceptions.Exit(5)


@vm.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--host", default="local", show_default=True)
def destroy(names: tuple[str, ...], host: str) -> None:
    """Stop the VMs NAMES at once and delete them with their disks and seeds."""
    settings = Settings.load()

    def one(name: str) -> str:
        service.destroy_vm(settings, name, host)
        return "destroyed"
    _each(names, one)


def _simple_action(action: str, doc: str) -> None:
    @vm.command(action, help=doc)
    @click.argument("names", nargs=-1, required=True)
    @click.option("--host", default="local", show_default=True)
    def command(names: tuple[str, ...], host: str) -> None:
        settings = Settings.load()
        _each(names, lambda name: service.vm_action(settings, name, action, host))


for _action, _doc in (("start", "Start the VMs NAMES."), ("reboot", "Reboot the VMs NAMES."),
                      ("pause", "Pause the VMs NAMES (their vCPUs stop)."),
                      ("resume", "Resume the paused VMs NAMES.")):
    _simple_action(_action, _doc)


@vm.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--host", default="local", show_default=True)
@click.option("--timeout", type=float, default=90, show_default=True,
              help="Seconds to wait for each guest before powering it off.")
def shutdown(names: tuple[str, ...], host: str, timeout: float) -> None:
    """Shut the VMs NAMES down gracefully; power off any still up after --timeout."""
    settings = Settings.load()
    forced = f"halted (forced: the guest ignored shutdown for {timeout:.0f} s)"

    def one(name: str) -> str:
        return "halted" if service.shutdown_vm(settings, name, host, timeout) else forced
    _each(names, one)


@vm.command()
@click.argument("name")
@click.argument("snapshot")
@click.option("--host", default="local", show_default=True)
def snapshot(name: str, snapshot: str, host: str) -> None:
    """Take snapshot SNAPSHOT of VM NAME (disk and, if running, memory)."""
    service.snapshot_vm(Settings.load(), name, snapshot, host)
    click.echo(f"VM {name}: snapshot {snapshot} taken")


@vm.command()
@click.argument("name")
@click.argument("snapshot")
@click.option("--host", default="local", show_default=True)
def revert(name: str, snapshot: str, host: str) -> None:
    """Return VM NAME to SNAPSHOT."""
    service.revert_vm(Settings.load(), name, snapshot, host)
    click.echo(f"VM {name}: reverted to {snapshot}")


@vm.command()
@click.argument("name")
@click.option("--host", default="local", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(name: str, host: str, as_json: bool) -> None:
    """Power state, addresses, disk, snapshots and console log of VM NAME."""
    details = service.vm_info(Settings.load(), name, host)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(details), indent=2))
        return
    for key, value in dataclasses.asdict(details).items():
        shown = " ".join(value) if isinstance(value, list) else value
        click.echo(f"{key.replace('_', ' '):<12} {shown if shown else '-'}")


@vm.command()
@click.argument("name")
@click.option("--host", default="local", show_default=True)
@click.option("--lines", type=int, default=50, show_default=True)
def console(name: str, host: str, lines: int) -> None:
    """The end of VM NAME's serial console."""
    click.echo(service.console_log(Settings.load(), name, host, lines))


@vm.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--host", default="local", show_default=True)
@click.option("--user", default="debian", show_default=True)
@click.option("--identity", "-i", type=click.Path(dir_okay=False), help="Private key file.")
def ssh(name: str, command: tuple[str, ...], host: str, user: str, identity: str | None) -> None:
    """SSH into VM NAME, or run `-- COMMAND` there; exits with ssh's status."""
    import subprocess
    args = service.ssh_command(Settings.load(), name, host, user, identity, command)
    raise click.exceptions.Exit(subprocess.call(args))
