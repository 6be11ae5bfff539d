"""`glasspane container ...`: the containers inside VMs."""

from __future__ import annotations

import dataclasses
import json
import sys
from collections.abc import Callable

import click

from glasspane.cli.remote import Remote, remote_of
from glasspane.cli.table import echo_table, human
from glasspane.containers import deploy, service
from glasspane.errors import UsageError
from glasspane.settings import Settings

host_option = click.option("--host", default="local", show_default=True,
                           help="The VM's host.")


@click.group()
def container() -> None:
    """Containers run by Docker or Podman inside VMs, reached over SSH."""


def _remote_listing(remote: Remote, vm: str | None, host: str | None, all_: bool
                    ) -> service.Listing:
    """The server's inventory of containers (kept current by its sync), as a local listing;
    VMs whose engine the server could not ask are its failures."""
    items = remote.get("/containers", host=host, vm=vm, limit=1000)["items"]
    rows = [service.ContainerRow(c["host"], c["vm"], c["id"], c["name"], c["image"],
                                 c["state"], c["status"], c["ports"], c["created"], c["app"])
            for c in items if all_ or c["state"] == "running"]
    vms = remote.get("/vms", host=host, q=vm, limit=1000)["items"]
    failures = [service.VmFailure(v["host"], v["name"], v["containers_error"]) for v in vms
                if v["containers_error"] and (vm is None or v["name"] == vm)]
    return service.Listing(rows, failures)


@container.command("list")
@click.argument("vm", required=False)
@click.option("--host", default=None, help="Only this host's VMs (default: every host).")
@click.option("--all", "-a", "all_", is_flag=True, help="Stopped containers too.")
@click.option("--timeout", type=float, default=30, show_default=True,
              help="Seconds to wait for each VM's engine.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_containers(vm: str | None, host: str | None, all_: bool, timeout: float,
                    as_json: bool) -> None:
    """Containers in VM, or in every running VM (polled in parallel).  A VM that cannot be
    asked is reported, the others are listed; the exit status is then 5."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        listing = _remote_listing(remote, vm, host, all_)
    else:
        listing = service.list_containers(Settings.load(), vm, host, all_, timeout)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(listing), indent=2))
    else:
        echo_table(("HOST", "VM", "CONTAINER", "IMAGE", "STATE", "PORTS", "CREATED"),
                   [(r.host, r.vm, r.name, r.image, r.state, ", ".join(r.ports) or "-",
                     r.created) for r in listing.containers])
    report_failures(listing, as_json)


def report_failures(listing: service.Listing, as_json: bool = False) -> None:
    """Each VM that could not be asked, on stderr (in --json it is in the output too); exit
    status 5 if there was any."""
    if not as_json:
        for failure in listing.failures:
            click.echo(f"glasspane: error: {failure.error}", err=True)
    if listing.failures:
        raise click.exceptions.Exit(5)


@container.command()
@click.argument("vm")
@host_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def engine(vm: str, host: str, as_json: bool) -> None:
    """The container engine found in VM: kind, version, API version, socket."""
    remote = remote_of(click.get_current_context())
    facts = remote.get(f"/vms/{host}/{vm}/engine") if remote is not None else \
        dataclasses.asdict(service.engine_info(Settings.load(), host, vm))
    if as_json:
        click.echo(json.dumps(facts, indent=2))
        return
    for key, value in facts.items():
        shown = ", ".join(value) if isinstance(value, list) else value
        click.echo(f"{key.replace('_', ' '):<12} {shown if shown not in ('', []) else '-'}")


@container.command()
@click.argument("vm")
@click.argument("name")
@host_option
def inspect(vm: str, name: str, host: str) -> None:
    """Everything the engine knows about container NAME in VM (JSON)."""
    remote = remote_of(click.get_current_context())
    data = remote.get(f"/containers/{host}/{vm}/{name}/inspect") if remote is not None \
        else service.inspect(Settings.load(), host, vm, name)
    click.echo(json.dumps(data, indent=2))


def _each(vm: str, names: tuple[str, ...], action: Callable[[str], str]) -> None:
    failed = 0
    for name in names:
        try:
            click.echo(f"VM {vm}, container {name}: {action(name)}")
        except Exception as exc:
            failed += 1
            click.echo(f"glasspane: error: {exc}", err=True)
    if failed:
        raise click.exceptions.Exit(5)


def _through(remote: Remote, host: str, vm: str, name: str, action: str) -> str:
    task = remote.post(f"/containers/{host}/{vm}/{name}/actions/{action}")
    result = remote.wait(task, quiet=True).get("result") or {}
    return str(result.get("state") or ("removed" if action == "remove" else "done"))


def _action_command(action: str, doc: str) -> None:
    @container.command(action, help=doc)
    @click.argument("vm")
    @click.argument("names", nargs=-1, required=True)
    @host_option
    @click.option("--time", "-t", "grace", type=int, default=10, show_default=True,
                  help="Seconds to wait for a stop before killing (stop, restart).")
    def command(vm: str, names: tuple[str, ...], host: str, grace: int) -> None:
        remote = remote_of(click.get_current_context())
        if remote is not None:
            _each(vm, names, lambda name: _through(remote, host, vm, name, action))
            return
        settings = Settings.load()
        _each(vm, names, lambda name: service.act(settings, host, vm, name, action, grace))


for _action, _doc in (("start", "Start containers NAMES in VM."),
                      ("stop", "Stop containers NAMES in VM (SIGTERM, then SIGKILL)."),
                      ("restart", "Restart containers NAMES in VM."),
                      ("pause", "Freeze the processes of containers NAMES in VM."),
                      ("unpause", "Thaw the processes of containers NAMES in VM.")):
    _action_command(_action, _doc)


@container.command()
@click.argument("vm")
@click.argument("names", nargs=-1, required=True)
@host_option
@click.option("--force", "-f", is_flag=True, help="Remove running containers too.")
def remove(vm: str, names: tuple[str, ...], host: str, force: bool) -> None:
    """Remove containers NAMES (and their anonymous volumes) from VM."""
    remote = remote_of(click.get_current_context())
    if remote is not None:  # the server's removal always forces
        _each(vm, names, lambda name: _through(remote, host, vm, name, "remove"))
        return
    settings = Settings.load()

    def one(name: str) -> str:
        service.remove(settings, host, vm, name, force)
        return "removed"
    _each(vm, names, one)


@container.command()
@click.argument("vm")
@click.argument("name")
@host_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output.")
@click.option("--tail", type=click.IntRange(0), help="Only the last N lines.")
def logs(vm: str, name: str, host: str, follow: bool, tail: int | None) -> None:
    """The output of container NAME in VM (stdout here, stderr to stderr)."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        if follow:
            raise UsageError("--follow does not work through --server yet")
        click.echo(remote.get(f"/containers/{host}/{vm}/{name}/logs", tail=tail or 200),
                   nl=False)
        return
    for stream, data in service.logs(Settings.load(), host, vm, name, follow, tail):
        out = sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer
        out.write(data)
        out.flush()


@container.command()
@click.argument("vm")
@click.argument("name")
@host_option
@click.pass_context
def top(ctx: click.Context, vm: str, name: str, host: str) -> None:
    """The processes of container NAME in VM."""
    remote = remote_of(ctx)
    if remote is not None:
        found = remote.get(f"/containers/{host}/{vm}/{name}/top")
        titles, rows = found["titles"], found["processes"]
    else:
        titles, rows = service.top(Settings.load(), host, vm, name)
    echo_table(titles, rows)


@container.command()
@click.argument("vm")
@click.argument("name")
@host_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def stats(ctx: click.Context, vm: str, name: str, host: str, as_json: bool) -> None:
    """CPU, memory, processes and network of container NAME in VM."""
    remote = remote_of(ctx)
    if remote is not None:
        numbers = service.ContainerStats(**remote.get(f"/containers/{host}/{vm}/{name}/stats"))
    else:
        numbers = service.stats(Settings.load(), host, vm, name)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(numbers), indent=2))
        return
    limit = f" of {human(numbers.memory_limit)}" if numbers.memory_limit else ""
    click.echo(f"cpu {numbers.cpu_percent:.1f}%  memory {human(numbers.memory_bytes)}{limit}  "
               f"pids {numbers.pids}  net rx {human(numbers.network_rx)} "
               f"tx {human(numbers.network_tx)}")


@container.command(context_settings={"ignore_unknown_options": True})
@click.argument("vm")
@click.argument("image")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@host_option
@click.option("--name", help="Container name (default: the engine's).")
@click.option("--publish", "-p", "ports", multiple=True,
              help="[IP:]HOST:CONTAINER[/PROTO], repeatable.")
@click.option("--env", "-e", multiple=True, help="KEY=VALUE, repeatable.")
@click.option("--volume", "-v", "volumes", multiple=True,
              help="SOURCE:/DEST[:ro], repeatable (SOURCE: a path or volume in the VM).")
@click.option("--restart", help="no, always, unless-stopped, on-failure[:N].")
@click.option("--label", "-l", "labels", multiple=True, help="KEY=VALUE, repeatable.")
@click.pass_context
def run(ctx: click.Context, vm: str, image: str, command: tuple[str, ...], host: str,
        name: str | None, ports: tuple[str, ...], env: tuple[str, ...],
        volumes: tuple[str, ...], restart: str | None, labels: tuple[str, ...]) -> None:
    """Run IMAGE as a new container in VM (`-- COMMAND...` overrides the image's)."""
    label_map = {}
    for label in labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{label!r} is not KEY=VALUE", param_hint="--label")
        label_map[key] = value
    request = deploy.RunRequest(image, name, list(command) or None, list(ports), list(env),
                                list(volumes), restart, label_map)
    remote = remote_of(ctx)
    if remote is not None:
        request.validate()
        task = remote.post(f"/containers/{host}/{vm}", {
            "image": image, "name": name, "command": request.command, "ports": request.ports,
            "env": request.env, "volumes": request.volumes, "restart": restart,
            "labels": label_map})
        result = remote.wait(task, quiet=True)["result"]
    else:
        result = deploy.run(Settings.load(), host, vm, request)
    click.echo(f"VM {vm}: container {result['name']} ({result['id']}) {result['state']}")


@container.command()
@click.argument("vm")
@host_option
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def images(ctx: click.Context, vm: str, host: str, as_json: bool) -> None:
    """The container images in VM."""
    remote = remote_of(ctx)
    found = remote.get(f"/vms/{host}/{vm}/images") if remote is not None \
        else service.list_images(Settings.load(), host, vm)
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    echo_table(("IMAGE", "ID", "SIZE"), [(", ".join(i["tags"]) or "<none>", i["id"],
                                          human(i["size"])) for i in found])
