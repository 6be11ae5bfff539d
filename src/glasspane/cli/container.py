"""`glasspane container ...`: the containers inside VMs."""

from __future__ import annotations

import sys

import click

from glasspane.cli.generated import catalogue_command
from glasspane.cli.operations import command_for, json_option, operations
from glasspane.cli.table import echo_result, echo_table, emit_json, human
from glasspane.containers.service import Listing
from glasspane.enums import ContainerAction
from glasspane.operations.containers import Act, Acted, ContainerRef, ContainerStatsView, Removed

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


catalogue_command(container, "container.engine", arguments=("vm",),
                  echo=lambda done, command: echo_result(done, False, 12, " ", ", "))
catalogue_command(container, "container.inspect", arguments=("vm", "name"),
                  echo=lambda done, command: emit_json(done.model_dump(exclude_unset=True)))
catalogue_command(container, "container.top", arguments=("vm", "name"),
                  echo=lambda done, command: echo_table(done.titles, done.processes))


def _stats(numbers: ContainerStatsView, command: ContainerRef) -> str:
    limit = f" of {human(numbers.memory_limit)}" if numbers.memory_limit else ""
    return (f"cpu {numbers.cpu_percent:.1f}%  memory {human(numbers.memory_bytes)}{limit}  "
            f"pids {numbers.pids}  net rx {human(numbers.network_rx)} "
            f"tx {human(numbers.network_tx)}")


catalogue_command(container, "container.stats", arguments=("vm", "name"), echo=_stats)


def _acted(done: Acted | Removed, command: Act) -> str:
    return f"VM {command.vm}, container {command.name}: {getattr(done, 'state', 'removed')}"


for _action in ContainerAction:  # remove's --force is off unless given, unlike the API's
    catalogue_command(container, f"container.{_action}", arguments=("vm", "name..."),
                      options={"grace": ["--time", "-t"], "force": ["--force", "-f"]},
                      defaults={"force": False}, prefix=None, parallel=False, echo=_acted)


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


catalogue_command(
    container, "container.run", arguments=("vm", "image", "command..."),
    options={"ports": ["--publish", "-p"], "env": ["--env", "-e"], "volumes": ["--volume", "-v"],
             "labels": ["--label", "-l"]},
    check=lambda fields: command_for("container.run", fields)[1].request().validate(),
    echo=lambda done, command: f"VM {command.vm}: container {done.name} ({done.id}) {done.state}")


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
