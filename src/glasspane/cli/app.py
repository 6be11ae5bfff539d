"""`glasspane app deploy|list|remove`: several containers from one compose-style file."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import click

from glasspane.cli.container import report_failures
from glasspane.cli.table import echo_table
from glasspane.containers import app as apps
from glasspane.containers.service import list_containers
from glasspane.settings import Settings


@click.group()
def app() -> None:
    """Apps: groups of containers described by one YAML file, deployed into a VM."""


@app.command()
@click.argument("vm")
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--host", default="local", show_default=True, help="The VM's host.")
def deploy(vm: str, spec: str, host: str) -> None:
    """Deploy the app described by SPEC into VM, or update it in place: unchanged services
    keep running, changed ones are recreated, ones gone from SPEC are removed."""
    for service, action in apps.deploy_app(Settings.load(), host, vm, Path(spec)):
        click.echo(f"VM {vm}: service {service} {action}")


@app.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
def validate(spec: str) -> None:
    """Check SPEC without deploying it."""
    parsed = apps.parse_app(Path(spec))
    click.echo(f"{spec}: app {parsed.name}, services "
               f"{', '.join(s.name for s in parsed.services)} (in start order)")


@app.command("list")
@click.argument("vm", required=False)
@click.option("--host", default=None, help="Only this host's VMs (default: every host).")
def list_apps(vm: str | None, host: str | None) -> None:
    """The apps in VM, or in every running VM, with their containers' states."""
    listing = list_containers(Settings.load(), vm, host, all_=True)
    grouped: dict[tuple[str, str, str], list[str]] = defaultdict(list)
    for row in listing.containers:
        if row.app:
            grouped[(row.host, row.vm, row.app)].append(f"{row.name} {row.state}")
    echo_table(("HOST", "VM", "APP", "CONTAINERS"),
               [(*key, ", ".join(names)) for key, names in sorted(grouped.items())])
    report_failures(listing)


@app.command()
@click.argument("vm")
@click.argument("name")
@click.option("--host", default="local", show_default=True, help="The VM's host.")
def remove(vm: str, name: str, host: str) -> None:
    """Remove every container of app NAME from VM."""
    removed = apps.remove_app(Settings.load(), host, vm, name)
    click.echo(f"VM {vm}: app {name} removed ({', '.join(removed)})")
