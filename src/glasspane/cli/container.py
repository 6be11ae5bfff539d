"""`glasspane container ...`: the containers inside VMs."""

from __future__ import annotations

import sys
from typing import Any

import click

from glasspane.cli.operations import json_option, operations
from glasspane.cli.table import echo_each, echo_fields, echo_table, emit_json, human
from glasspane.containers.deploy import RunRequest
from glasspane.containers.service import Listing
from glasspane.enums import ContainerAction

host_option = click.option("--host", default="local", show_default=True,
                           help="The VM's host.")


@click.group()
def container() -> None:
    """Containers run by Docker or Podman inside VMs, reached over SSH."""


@container.command("list")
@click.argument("vm", required=False)
@click.option("--host", default=None, help="Only this host's VMs (default: every host).")
@click.option("--all", "-a", "all_", is_flag=True, help="Stopped containers too.")
@click.option("--timeout", type=float, default=30, show_default=True,
              help="Seconds to wait for each VM's engine.")
@json_option
def list_containers(vm: str | None, host: str | None, all_: bool, timeout: float,
                    as_json: bool) -> None:
    """Containers in VM, or in every running VM (polled in parallel).  A VM that cannot be
    asked is reported, the others are listed; the exit status is then 5."""
    listing = operations().container_list(vm, host, all_, timeout)
    if as_json:
        emit_json(listing)
    else:
        echo_table(("HOST", "VM", "CONTAINER", "IMAGE", "STATE", "PORTS", "CREATED"),
                   [(r.host, r.vm, r.name, r.image, r.state, ", ".join(r.ports) or "-",
                     r.created) for r in listing.containers])
    report_failures(listing, as_json)


def report_failures(listing: Listing, as_json: bool = False) -> None:
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
@json_option
def engine(vm: str, host: str, as_json: bool) -> None:
    """The container engine found in VM: kind, version, API version, socket."""
    facts = operations().container_engine(host, vm)
    if as_json:
        emit_json(facts)
    else:
        echo_fields([(k.replace("_", " "), v) for k, v in vars(facts).items()], 12, " ", ", ")


@container.command()
@click.argument("vm")
@click.argument("name")
@host_option
def inspect(vm: str, name: str, host: str) -> None:
    """Everything the engine knows about container NAME in VM (JSON)."""
    emit_json(operations().container_inspect(host, vm, name))


def _act(vm: str, names: tuple[str, ...], host: str, action: ContainerAction,
         **options: Any) -> None:
    ops = operations()

    def one(name: str) -> str:
        done = ops.run(f"container.{action}", host=host, vm=vm, name=name, **options)
        return str(getattr(done, "state", None) or "removed")
    echo_each(names, one, f"VM {vm}, container ", parallel=False, name_errors=False)


def _action_command(action: ContainerAction, doc: str) -> None:
    @container.command(action.value, help=doc)
    @click.argument("vm")
    @click.argument("names", nargs=-1, required=True)
    @host_option
    @click.option("--time", "-t", "grace", type=int, default=10, show_default=True,
                  help="Seconds to wait for a stop before killing (stop, restart).")
    def command(vm: str, names: tuple[str, ...], host: str, grace: int) -> None:
        _act(vm, names, host, action, grace=grace)


for _action, _doc in (
        (ContainerAction.START, "Start containers NAMES in VM."),
        (ContainerAction.STOP, "Stop containers NAMES in VM (SIGTERM, then SIGKILL)."),
        (ContainerAction.RESTART, "Restart containers NAMES in VM."),
        (ContainerAction.PAUSE, "Freeze the processes of containers NAMES in VM."),
        (ContainerAction.UNPAUSE, "Thaw the processes of containers NAMES in VM.")):
    _action_command(_action, _doc)


@container.command()
@click.argument("vm")
@click.argument("names", nargs=-1, required=True)
@host_option
@click.option("--force", "-f", is_flag=True, help="Remove running containers too.")
def remove(vm: str, names: tuple[str, ...], host: str, force: bool) -> None:
    """Remove containers NAMES (and their anonymous volumes) from VM."""
    _act(vm, names, host, ContainerAction.REMOVE, force=force)


@container.command()
@click.argument("vm")
@click.argument("name")
@host_option
@click.option("--follow", "-f", is_flag=True, help="Keep printing new output.")
@click.option("--tail", type=click.IntRange(0), help="Only the last N lines.")
def logs(vm: str, name: str, host: str, follow: bool, tail: int | None) -> None:
    """The output of container NAME in VM (stdout here, stderr to stderr)."""
    for stream, data in operations().container_logs(host, vm, name, follow, tail):
        out = sys.stderr.buffer if stream == "stderr" else sys.stdout.buffer
        out.write(data)
        out.flush()


@container.command()
@click.argument("vm")
@click.argument("name")
@host_option
def top(vm: str, name: str, host: str) -> None:
    """The processes of container NAME in VM."""
    echo_table(*operations().container_top(host, vm, name))


@container.command()
@click.argument("vm")
@click.argument("name")
@host_option
@json_option
def stats(vm: str, name: str, host: str, as_json: bool) -> None:
    """CPU, memory, processes and network of container NAME in VM."""
    numbers = operations().container_stats(host, vm, name)
    if as_json:
        emit_json(numbers)
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
def run(vm: str, image: str, command: tuple[str, ...], host: str, name: str | None,
        ports: tuple[str, ...], env: tuple[str, ...], volumes: tuple[str, ...],
        restart: str | None, labels: tuple[str, ...]) -> None:
    """Run IMAGE as a new container in VM (`-- COMMAND...` overrides the image's)."""
    label_map = {}
    for label in labels:
        key, sep, value = label.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{label!r} is not KEY=VALUE", param_hint="--label")
        label_map[key] = value
    request = RunRequest(image, name, list(command) or None, list(ports), list(env),
                         list(volumes), restart, label_map)
    request.validate()  # a usage error here, before anything is sent or started
    done = operations().run("container.run", host=host, vm=vm, **vars(request))
    click.echo(f"VM {vm}: container {done.name} ({done.id}) {done.state}")


@container.command()
@click.argument("vm")
@host_option
@json_option
def images(vm: str, host: str, as_json: bool) -> None:
    """The container images in VM."""
    found = operations().container_images(host, vm)
    if as_json:
        emit_json(found)
        return
    echo_table(("IMAGE", "ID", "SIZE"), [(", ".join(i["tags"]) or "<none>", i["id"],
                                          human(i["size"])) for i in found])
