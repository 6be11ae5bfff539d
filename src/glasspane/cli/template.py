"""`glasspane template import|from-debian|list|remove|validate|build`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from glasspane.cli.operations import host_option, json_option, operations
from glasspane.cli.table import emit_json, human
from glasspane.templates.spec import parse_spec, parse_vars, select_outputs

var_option = click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
                          help="Override a variable the spec declares (repeatable).")


@click.group()
def template() -> None:
    """Templates: base disks stored on a host, from which VMs are cloned."""


def _imported(info: Any) -> None:
    click.echo(f"imported template {info.name} on {info.host}: {info.path}, "
               f"{human(info.virtual_size)} virtual, {human(info.allocation)} stored")


@template.command("import")
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False))
@host_option
@click.option("--disk", type=int, help="Which disk of an XVA/OVA (default: the first).")
@click.option("--kernel", type=click.Path(dir_okay=False, exists=True),
              help="The kernel a disk without a bootloader boots from (a build's NAME.vmlinuz).")
@click.option("--initrd", type=click.Path(dir_okay=False, exists=True),
              help="Its initrd (a build's NAME.initrd).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def import_(name: str, file: str, host: str, disk: int | None, kernel: str | None,
            initrd: str | None, quiet: bool) -> None:
    """Store FILE (raw, VHD, qcow2, VMDK, XVA, OVA) as template NAME on a host."""
    _imported(operations().run("template.import", quiet, name=name, host=host, image=file,
                               disk=disk, kernel=kernel, initrd=initrd))


@template.command("from-debian")
@click.argument("name")
@host_option
@click.option("--suite", default="bookworm", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def from_debian(name: str, host: str, suite: str, quiet: bool) -> None:
    """Build a Debian template from Debian's mirror alone (cached by its recipe)."""
    if not quiet:
        click.echo(f"building or reusing the Debian {suite} image (about two minutes the "
                   "first time) ...", err=True)
    _imported(operations().run("template.from-debian", quiet, name=name, host=host,
                               suite=suite))


@template.command("list")
@host_option
@json_option
def list_(host: str, as_json: bool) -> None:
    """Templates on a host."""
    templates = operations().template_list(host)
    if as_json:
        emit_json(templates)
        return
    for t in templates:
        if t.builtin:
            click.echo(f"{t.name}  XenServer built-in (no disk, installs from media: not for "
                       f"vm create)  {t.path}")
            continue
        click.echo(f"{t.name}  {human(t.virtual_size)} virtual  {human(t.allocation)} stored"
                   + (f"  {t.path}" if t.path else ""))


@template.command("remove")
@click.argument("name")
@host_option
def remove(name: str, host: str) -> None:
    """Delete template NAME (refused while VMs use it)."""
    operations().run("template.remove", name=name, host=host)
    click.echo(f"removed template {name} from {host}")


@template.command("validate")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@var_option
def validate(spec: Path, variables: tuple[str, ...]) -> None:
    """Check template spec SPEC without building it (with --server: as the server would
    see it, from the build context sent to it)."""
    ops = operations()
    found = ops.template_validate(parse_spec(spec, parse_vars(variables)),
                                  parse_vars(variables))
    click.echo(f"{spec}{ops.place}: template {found.name} from {found.source}, "
               f"{found.provisioners} provisioner(s), outputs " + ", ".join(found.outputs))


@template.command("build")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@var_option
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
    """Build template SPEC: boot it, provision it, export every output, register it (with
    --server: on the server, from the spec's directory sent to it; the outputs and the
    manifest stay in the server's image store, for `image get`)."""
    parsed = parse_spec(spec, parse_vars(variables))
    select_outputs(parsed, only)  # an unknown --only fails before anything starts
    done = operations().template_build(parsed, parse_vars(variables), list(only), output_dir,
                                       host, not no_register, quiet)
    click.echo(f"built template {done.name} in {done.seconds} s; {done.place}:")
    for output in done.outputs:
        click.echo(f"  {output}")
    if done.registered is not None:
        click.echo(f"registered as template {done.name} on {done.registered}")
