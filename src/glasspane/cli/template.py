"""`glasspane template import|list|remove`."""

from __future__ import annotations

import dataclasses
import json

import click

from glasspane.cli.progress import byte_progress
from glasspane.cli.remote import remote_of
from glasspane.cli.table import human
from glasspane.settings import Settings
from glasspane.templates import service


@click.group()
def template() -> None:
    """Templates: base disks stored on a host, from which VMs are cloned."""


@template.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--host", default="local", show_default=True)
@click.option("--disk", type=int, help="Which disk of an XVA/OVA (default: the first).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def import_(name: str, file: str, host: str, disk: int | None, quiet: bool) -> None:
    """Store FILE (raw, VHD, qcow2, VMDK, XVA, OVA) as template NAME on a host."""
    with byte_progress(not quiet) as start:
        info = service.import_template(Settings.load(), name, file, host, disk, start)
    click.echo(f"imported template {info.name} on {info.host}: {info.path}, "
               f"{human(info.virtual_size)} virtual, {human(info.allocation)} stored")


@template.command("from-debian")
@click.argument("name")
@click.option("--host", default="local", show_default=True)
@click.option("--suite", default="bookworm", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def from_debian(name: str, host: str, suite: str, quiet: bool) -> None:
    """Build a Debian template from Debian's mirror alone (cached by its recipe)."""
    if not quiet:
        click.echo(f"building or reusing the Debian {suite} image (about two minutes the "
                   "first time) ...", err=True)
    with byte_progress(not quiet) as start:
        info = service.template_from_debian(Settings.load(), name, host, suite, start)
    click.echo(f"imported template {info.name} on {info.host}: {info.path}, "
               f"{human(info.virtual_size)} virtual, {human(info.allocation)} stored")


@template.command("list")
@click.option("--host", default="local", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(host: str, as_json: bool) -> None:
    """Templates on a host."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        items = remote.get("/templates", host=host, limit=1000)["items"]
        if as_json:
            click.echo(json.dumps(items, indent=2))
            return
        for item in items:
            click.echo(f"{item['name']}  {human(item['virtual_size'])} virtual  "
                       f"{human(item['allocation'])} stored")
        return
    templates = service.list_templates(Settings.load(), host)
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(t) for t in templates], indent=2))
        return
    for t in templates:
        click.echo(f"{t.name}  {human(t.virtual_size)} virtual  {human(t.allocation)} stored  "
                   f"{t.path}")


@template.command("remove")
@click.argument("name")
@click.option("--host", default="local", show_default=True)
def remove(name: str, host: str) -> None:
    """Delete template NAME (refused while VMs use it)."""
    service.remove_template(Settings.load(), name, host)
    click.echo(f"removed template {name} from {host}")
