"""`glasspane template import|list|remove`."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import click

from glasspane.cli.progress import byte_progress
from glasspane.cli.remote import remote_of
from glasspane.cli.table import human
from glasspane.settings import Settings
from glasspane.templates import service
from glasspane.templates.spec import parse_spec, parse_vars, select_outputs


@click.group()
def template() -> None:
    """Templates: base disks stored on a host, from which VMs are cloned."""


@template.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--host", default="local", show_default=True)
@click.option("--disk", type=int, help="Which disk of an XVA/OVA (default: the first).")
@click.option("--kernel", type=click.Path(dir_okay=False, exists=True),
              help="The kernel a disk without a bootloader boots from (a build's NAME.vmlinuz).")
@click.option("--initrd", type=click.Path(dir_okay=False, exists=True),
              help="Its initrd (a build's NAME.initrd).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def import_(name: str, file: str, host: str, disk: int | None, kernel: str | None,
            initrd: str | None, quiet: bool) -> None:
    """Store FILE (raw, VHD, qcow2, VMDK, XVA, OVA) as template NAME on a host."""
    with byte_progress(not quiet) as start:
        info = service.import_template(Settings.load(), name, file, host, disk, start,
                                       kernel=kernel, initrd=initrd)
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


@template.command("validate")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
              help="Override a variable the spec declares (repeatable).")
def validate(spec: Path, variables: tuple[str, ...]) -> None:
    """Check template spec SPEC without building it."""
    parsed = parse_spec(spec, parse_vars(variables))
    click.echo(f"{spec}: template {parsed.name} from {parsed.source.describe()}, "
               f"{len(parsed.provisioners)} provisioner(s), outputs "
               + ", ".join(o.filename(parsed.name) for o in parsed.outputs))


@template.command("build")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
              help="Override a variable the spec declares (repeatable).")
@click.option("--only", multiple=True, metavar="OUTPUT",
              help="Build only this output (its name or format; repeatable).")
@click.option("--output-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the outputs and manifest.json go (default: ./output-NAME).")
@click.option("--host", default="local", show_default=True,
              help="The host that runs the build VM and keeps the template.")
@click.option("--no-register", is_flag=True,
              help="Only write the outputs; do not store the template for `vm create`.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars or step output.")
def build(spec: Path, variables: tuple[str, ...], only: tuple[str, ...],
          output_dir: Path | None, host: str, no_register: bool, quiet: bool) -> None:
    """Build template SPEC: boot it, provision it, export every output, register it."""
    from glasspane.templates.build import build_template
    parsed = parse_spec(spec, parse_vars(variables))
    select_outputs(parsed, only)  # an unknown --only fails before anything starts

    def echo(text: str) -> None:
        click.echo(text, nl=False)

    with byte_progress(not quiet) as start:
        result = build_template(Settings.load(), parsed, only=only, output_dir=output_dir,
                                host=host, register=not no_register, start=start,
                                echo=None if quiet else echo)
    click.echo(f"built template {result.name} in {result.manifest['build_seconds']} s; "
               f"outputs in {result.directory}:")
    for output in result.manifest["outputs"]:
        click.echo(f"  {output['file']}  {human(output['file_size'])}  sha256 "
                   f"{output['sha256'][:16]}...  verified: {', '.join(output['verified'])}")
    if result.template is not None:
        click.echo(f"registered as template {result.template.name} on {result.template.host}")
