"""`glasspane vm create|list|destroy`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import click

from glasspane.cli.remote import Remote, remote_of
from glasspane.errors import GlasspaneError, UsageError
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
@click.option("--no-wait", is_flag=True,
              help="Return once the VM has an address; do not wait for SSH and cloud-init.")
@click.option("--network", help="The network to connect the VM to (libvirt: `default`; "
                                "XenServer: the template's, or a network's name or bridge).")
@click.option("--label", "-l", "labels", multiple=True, metavar="KEY=VALUE",
              help="A label kept with the VM (repeatable): `inventory` groups by it, "
                   "`vm configure --label` selects by it.")
def create(name: str, template: str, host: str, cpus: int, memory_mib: int,
           disk_gib: int | None, ssh_keys: tuple[str, ...], user_data: str | None,
           network_config: str | None, timeout: float, count: int, full: bool,
           no_wait: bool, network: str | None, labels: tuple[str, ...]) -> None:
    """Create VM NAME from a template, start it and wait until SSH answers."""
    keys = [Path(k).read_text().strip() for k in ssh_keys]
    names = [name] if count == 1 else [f"{name}-{i}" for i in range(1, count + 1)]
    label_map = service.parse_labels(labels)
    requests = [service.VmRequest(n, template, cpus, memory_mib, disk_gib, keys,
                                  _read(user_data), _read(network_config), not full,
                                  wait_ready=not no_wait, labels=label_map, network=network)
                for n in names]
    remote = remote_of(click.get_current_context())
    if remote is not None:
        _create_remote(remote, requests, host)
        return
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
        click.echo(f"created VM {result.name} on {result.host}: {address}"
                   + (f" ({result.ssh})" if result.ssh else ""))
    if failed:
        raise click.exceptions.Exit(5)


def _create_remote(remote: Remote, requests: list[service.VmRequest], host: str) -> None:
    """Submit every creation at once (the server runs them in parallel), then follow each."""
    tasks = [remote.post("/vms", {"name": r.name, "template": r.template, "host": host,
                                  "cpus": r.cpus, "memory_mib": r.memory_mib,
                                  "disk_gib": r.disk_gib, "ssh_keys": r.ssh_keys,
                                  "user_data": r.user_data, "labels": r.labels,
                                  "network": r.network, "network_config": r.network_config,
                                  "full": not r.linked})
             for r in requests]
    failed = 0
    for request, task in zip(requests, tasks, strict=True):
        try:
            done = remote.wait(task)
        except Exception as exc:
            failed += 1
            click.echo(f"glasspane: error: VM {request.name}: {exc}", err=True)
            continue
        address = (done["result"]["addresses"] or ["?"])[0]
        click.echo(f"created VM {request.name} on {host}: {address} (task {done['id']})")
    if failed:
        raise click.exceptions.Exit(5)


@vm.command("list")
@click.option("--host", default="local", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def list_vms(ctx: click.Context, host: str, as_json: bool) -> None:
    """VMs on a host, with their power state and addresses."""
    remote = remote_of(ctx)
    if remote is not None:
        rows = [{"name": v["name"], "uuid": v["uuid"], "power_state": v["power_state"],
                 "template": v["template"], "labels": v["labels"],
                 "addresses": v["addresses"]}
                for v in remote.get("/vms", host=host, limit=1000)["items"]]
    else:
        rows = service.list_vms(Settings.load(), host)
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for row in rows:
        addresses = row["addresses"]
        assert isinstance(addresses, list)
        labels = row.get("labels") or {}
        assert isinstance(labels, dict)
        tags = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        click.echo(f"{row['name']}  {row['power_state']}  {' '.join(addresses)}"
                   + (f"  {tags}" if tags else ""))


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
@click.pass_context
def destroy(ctx: click.Context, names: tuple[str, ...], host: str) -> None:
    """Stop the VMs NAMES at once and delete them with their disks and seeds."""
    remote = remote_of(ctx)
    settings = Settings.load()

    def one(name: str) -> str:
        if remote is not None:
            _through(remote, f"/vms/{host}/{name}", method="DELETE")
        else:
            service.destroy_vm(settings, name, host)
        return "destroyed"
    _each(names, one)


def _through(remote: Remote, path: str, body: dict[str, Any] | None = None,
             method: str = "POST") -> str:
    """Run an action on the server as a task and follow it; the task's outcome."""
    task = remote.call(method, path, json=body)
    done = remote.wait(task, quiet=True)
    result = done.get("result") or {}
    return str(result.get("power_state") or done["state"])


def _simple_action(action: str, doc: str) -> None:
    @vm.command(action, help=doc)
    @click.argument("names", nargs=-1, required=True)
    @click.option("--host", default="local", show_default=True)
    @click.pass_context
    def command(ctx: click.Context, names: tuple[str, ...], host: str) -> None:
        remote = remote_of(ctx)
        if remote is not None:
            _each(names, lambda name: _through(remote, f"/vms/{host}/{name}/actions/{action}"))
            return
        settings = Settings.load()
        _each(names, lambda name: service.vm_action(settings, name, action, host))


for _action, _doc in (("start", "Start the VMs NAMES."), ("reboot", "Reboot the VMs NAMES."),
                      ("pause", "Pause the VMs NAMES (their vCPUs stop)."),
                      ("suspend", "Suspend the VMs NAMES (memory saved to disk, stopped)."),
                      ("resume", "Resume the paused or suspended VMs NAMES.")):
    _simple_action(_action, _doc)


@vm.command()
@click.argument("names", nargs=-1, required=True)
@click.option("--host", default="local", show_default=True)
@click.option("--timeout", type=float, default=90, show_default=True,
              help="Seconds to wait for each guest before powering it off.")
@click.pass_context
def shutdown(ctx: click.Context, names: tuple[str, ...], host: str, timeout: float) -> None:
    """Shut the VMs NAMES down gracefully; power off any still up after --timeout."""
    remote = remote_of(ctx)
    if remote is not None:
        _each(names, lambda name: _through(remote, f"/vms/{host}/{name}/actions/shutdown",
                                           {"timeout": int(timeout)}))
        return
    settings = Settings.load()
    forced = f"halted (forced: the guest ignored shutdown for {timeout:.0f} s)"

    def one(name: str) -> str:
        return "halted" if service.shutdown_vm(settings, name, host, timeout) else forced
    _each(names, one)


@vm.command()
@click.argument("name")
@click.argument("snapshot")
@click.option("--host", default="local", show_default=True)
@click.pass_context
def snapshot(ctx: click.Context, name: str, snapshot: str, host: str) -> None:
    """Take snapshot SNAPSHOT of VM NAME (disk and, if running, memory)."""
    remote = remote_of(ctx)
    if remote is not None:
        _through(remote, f"/vms/{host}/{name}/snapshots", {"name": snapshot})
    else:
        service.snapshot_vm(Settings.load(), name, snapshot, host)
    click.echo(f"VM {name}: snapshot {snapshot} taken")


@vm.command("set")
@click.argument("name")
@click.option("--host", default="local", show_default=True)
@click.option("--cpus", type=click.IntRange(1, 64), help="vCPUs.")
@click.option("--memory", "memory_mib", type=click.IntRange(128, 1 << 20), help="MiB.")
@click.pass_context
def set_resources(ctx: click.Context, name: str, host: str, cpus: int | None,
                  memory_mib: int | None) -> None:
    """Change VM NAME's vCPUs and/or memory, from its next boot."""
    if cpus is None and memory_mib is None:
        raise UsageError("nothing to change", hint="give --cpus, --memory or both")
    remote = remote_of(ctx)
    if remote is not None:
        remote.call("PATCH", f"/vms/{quote(host, safe='')}/{quote(name, safe='')}/resources",
                    json={"cpus": cpus, "memory_mib": memory_mib})
    else:
        service.set_resources(Settings.load(), name, host, cpus, memory_mib)
    changed = ", ".join(part for part in (f"{cpus} vCPUs" if cpus else "",
                                          f"{memory_mib} MiB" if memory_mib else "") if part)
    click.echo(f"VM {name}: {changed} from its next boot")


@vm.command()
@click.argument("name")
@click.argument("snapshot")
@click.option("--host", default="local", show_default=True)
@click.pass_context
def revert(ctx: click.Context, name: str, snapshot: str, host: str) -> None:
    """Return VM NAME to SNAPSHOT."""
    remote = remote_of(ctx)
    if remote is not None:
        _through(remote, f"/vms/{host}/{name}/snapshots/{snapshot}/revert")
    else:
        service.revert_vm(Settings.load(), name, snapshot, host)
    click.echo(f"VM {name}: reverted to {snapshot}")


@vm.command()
@click.argument("name")
@click.option("--host", default="local", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def info(ctx: click.Context, name: str, host: str, as_json: bool) -> None:
    """Power state, addresses, disk, snapshots and console log of VM NAME."""
    remote = remote_of(ctx)
    if remote is not None:
        found = remote.get(f"/vms/{host}/{name}")
        facts = remote.get(f"/vms/{host}/{name}/facts")
        try:
            console_text = remote.get(f"/vms/{host}/{name}/console", lines=20)
        except GlasspaneError as exc:  # a VM glasspane did not make keeps no console log
            console_text = f"({exc})"
        data: dict[str, Any] = {**facts, "template": found["template"],
                                "labels": [f"{k}={v}" for k, v in found["labels"].items()],
                                "containers": [c["name"] for c in found["containers"]],
                                "console_log": console_text}
    else:
        data = dataclasses.asdict(service.vm_info(Settings.load(), name, host))
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    for key, value in data.items():
        shown = " ".join(value) if isinstance(value, list) else value
        click.echo(f"{key.replace('_', ' '):<12} {shown if shown else '-'}")


@vm.command()
@click.argument("name")
@click.option("--host", default="local", show_default=True)
@click.option("--lines", type=int, default=50, show_default=True)
@click.pass_context
def console(ctx: click.Context, name: str, host: str, lines: int) -> None:
    """The end of VM NAME's serial console."""
    remote = remote_of(ctx)
    if remote is not None:
        click.echo(remote.get(f"/vms/{host}/{name}/console", lines=lines))
    else:
        click.echo(service.console_log(Settings.load(), name, host, lines))


@vm.command(context_settings={"ignore_unknown_options": True})
@click.argument("name")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@click.option("--host", default="local", show_default=True)
@click.option("--user", default="debian", show_default=True)
@click.option("--identity", "-i", type=click.Path(dir_okay=False), help="Private key file.")
def ssh(name: str, command: tuple[str, ...], host: str, user: str, identity: str | None) -> None:
    """SSH into VM NAME, or run `-- COMMAND` there; exits with ssh's status (with
    --server: `-- COMMAND` runs through the server as glasspane's user)."""
    import subprocess
    remote = remote_of(click.get_current_context())
    if remote is not None:
        if not command:
            raise UsageError("an interactive session needs a terminal to the VM itself",
                             hint="run `glasspane vm ssh` without --server where the VM is "
                                  "reachable, or give `-- COMMAND`")
        done = remote.post(f"/vms/{host}/{name}/exec", {"command": list(command)})
        click.echo(done["output"], nl=False)
        if done["truncated"]:
            click.echo("glasspane: output cut at 1 MiB", err=True)
        raise click.exceptions.Exit(done["exit_code"])
    args = service.ssh_command(Settings.load(), name, host, user, identity, command)
    raise click.exceptions.Exit(subprocess.call(args))


@vm.command()
@click.argument("vms", nargs=-1)
@click.argument("playbook", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--label", "-l", metavar="KEY[=VALUE]",
              help="Every running VM with this label (beside any VMs named).")
@click.option("--extra-var", "-e", "extra", multiple=True, metavar="NAME=VALUE",
              help="A variable for the playbook (repeatable).")
@click.option("--quiet", "-q", is_flag=True, help="Only the recap, not the playbook's output.")
@click.pass_context
def configure(ctx: click.Context, vms: tuple[str, ...], playbook: Path, label: str | None,
              extra: tuple[str, ...], quiet: bool) -> None:
    """Run an Ansible PLAYBOOK against running VMs (named, or by --label)."""
    from glasspane.vms.configure import configure_vms
    extra_vars = {}
    for pair in extra:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--extra-var {pair!r}: expected NAME=VALUE")
        extra_vars[key] = value
    remote = remote_of(ctx)
    if remote is not None:
        task = remote.post("/vms/configure", {
            "vms": list(vms), "label": label, "playbook": playbook.read_text(),
            "playbook_name": playbook.name, "extra_vars": extra_vars})
        done = remote.wait(task)
        click.echo(done["result"]["recap"])
        click.echo(f"configured {', '.join(done['result']['vms'])} (task {done['id']})")
        return

    def echo(chunk: bytes) -> None:
        click.echo(chunk.decode(errors="replace"), nl=False)

    result = configure_vms(Settings.load(), playbook, list(vms), label, extra_vars,
                           on_output=None if quiet else echo)
    if quiet:
        click.echo(result["recap"])
    click.echo(f"configured {', '.join(result['vms'])}: {result['tasks']} task(s) ran")


@vm.command("export")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--host", default="local", show_default=True)
@click.option("--to", "to", help="Output format (default: from FILE's extension).")
@click.option("--disk", type=int, default=0, show_default=True,
              help="Which disk, for a disk format (XVA and OVA take the whole VM).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def export(name: str, file: str, host: str, to: str | None, disk: int, force: bool,
           quiet: bool) -> None:
    """Export halted VM NAME to FILE: XVA or OVA (the whole VM), qcow2, VHD, VMDK or raw
    (with --server: FILE is downloaded from the server, or `@NAME` stays in its store)."""
    from glasspane.cli.progress import byte_progress
    from glasspane.vms.export import export_vm
    remote = remote_of(click.get_current_context())
    if remote is not None:
        def make(stored: str) -> tuple[Any, list[str]]:
            task = remote.post(f"/vms/{host}/{name}/export", {
                "output": stored, "format": to, "disk": disk, "replace": force})
            return remote.wait(task, quiet)["result"], [stored]
        result = remote.fetch_output(file, make, force, quiet)
        click.echo(f"exported VM {name} from {host} to {file} ({result['format']}, "
                   f"{result['size']} bytes, sha256 {result['sha256']})")
        return
    with byte_progress(not quiet) as start:
        fmt = export_vm(Settings.load(), name, Path(file), host, to, disk, force, start)
    click.echo(f"exported VM {name} from {host} to {file} ({fmt}, "
               f"{Path(file).stat().st_size} bytes)")
