"""`glasspane app deploy|validate|list|remove`: several containers from one compose-style file."""

from __future__ import annotations

from pathlib import Path

import click

from glasspane.cli.container import host_option, report_failures
from glasspane.cli.generated import catalogue_command
from glasspane.cli.operations import operations
from glasspane.cli.table import echo_table
from glasspane.containers.app import parse_app
from glasspane.containers.service import Listing


@click.group()
def app() -> None:
    """Apps: groups of containers described by one YAML file, deployed into a VM."""


@app.command()
@click.argument("vm")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@host_option
def deploy(vm: str, spec: Path, host: str) -> None:
    """Deploy the app described by SPEC into VM, or update it in place: unchanged services
    keep running, changed ones are recreated, ones gone from SPEC are removed (with
    --server: SPEC's directory, its image archives included, is sent to the server)."""
    for service, action in operations().app_deploy(host, vm, spec):
        click.echo(f"VM {vm}: service {service} {action}")


@app.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def validate(spec: Path) -> None:
    """Check SPEC without deploying it."""
    parsed = parse_app(spec)
    names = operations().app_validate(spec)
    click.echo(f"{spec}: app {parsed.name}, services {', '.join(names)} (in start order)")


@app.command("list")
@click.argument("vm", required=False)
@click.option("--host", default=None, help="Only this host's VMs (default: every host).")
def list_apps(vm: str | None, host: str | None) -> None:
    """The apps in VM, or in every running VM, with their containers' states."""
    found = operations().app_list(vm, host)
    echo_table(("HOST", "VM", "APP", "CONTAINERS"),
               [(a.host, a.vm, a.name, ", ".join(a.containers)) for a in found.apps])
    report_failures(Listing([], found.failures))


catalogue_command(app, "app.remove", arguments=("vm", "name"),
                  echo=lambda done, command: f"VM {command.vm}: app {command.name} removed "
                                             f"({', '.join(done.removed)})")
