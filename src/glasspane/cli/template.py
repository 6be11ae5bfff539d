"""`glasspane template import|from-debian|list|remove|validate|build`."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import click

from glasspane.cli.progress import byte_progress
from glasspane.cli.remote import Remote, remote_of
from glasspane.cli.table import human
from glasspane.images.references import FOLLOW_ANYWHERE
from glasspane.settings import Settings
from glasspane.templates import service
from glasspane.templates.spec import TemplateSpec, parse_spec, parse_vars, select_outputs


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
    remote = remote_of(click.get_current_context())
    if remote is not None:
        with ExitStack() as stack:
            staged = {key: stack.enter_context(remote.staged(Path(path), quiet))
                      for key, path in (("image", file), ("kernel", kernel),
                                        ("initrd", initrd)) if path}
            task = remote.post("/templates", {"name": name, "host": host, "disk": disk,
                                              **staged})
            result = remote.wait(task, quiet)["result"]
        _imported(result)
        return
    with byte_progress(not quiet) as start:
        info = service.import_template(Settings.load(), name, file, host, disk, start,
                                       kernel=kernel, initrd=initrd,
                                       references=FOLLOW_ANYWHERE)
    _imported(dataclasses.asdict(info))


def _imported(info: dict[str, Any]) -> None:
    click.echo(f"imported template {info['name']} on {info['host']}: {info['path']}, "
               f"{human(info['virtual_size'])} virtual, {human(info['allocation'])} stored")


@template.command("from-debian")
@click.argument("name")
@click.option("--host", default="local", show_default=True)
@click.option("--suite", default="bookworm", show_default=True)
@click.option("--quiet", "-q", is_flag=True, help="No progress bars.")
def from_debian(name: str, host: str, suite: str, quiet: bool) -> None:
    """Build a Debian template from Debian's mirror alone (cached by its recipe)."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        task = remote.post("/templates/from-debian", {"name": name, "host": host,
                                                      "suite": suite})
        _imported(remote.wait(task, quiet)["result"])
        return
    if not quiet:
        click.echo(f"building or reusing the Debian {suite} image (about two minutes the "
                   "first time) ...", err=True)
    with byte_progress(not quiet) as start:
        info = service.template_from_debian(Settings.load(), name, host, suite, start)
    _imported(dataclasses.asdict(info))


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
        if t.builtin:
            click.echo(f"{t.name}  XenServer built-in (no disk, installs from media: not for "
                       f"vm create)  {t.path}")
            continue
        click.echo(f"{t.name}  {human(t.virtual_size)} virtual  {human(t.allocation)} stored  "
                   f"{t.path}")


@template.command("remove")
@click.argument("name")
@click.option("--host", default="local", show_default=True)
def remove(name: str, host: str) -> None:
    """Delete template NAME (refused while VMs use it)."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        remote.wait(remote.delete(f"/templates/{host}/{name}"), quiet=True)
        click.echo(f"removed template {name} from {host}")
        return
    service.remove_template(Settings.load(), name, host)
    click.echo(f"removed template {name} from {host}")


@template.command("validate")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--var", "variables", multiple=True, metavar="NAME=VALUE",
              help="Override a variable the spec declares (repeatable).")
def validate(spec: Path, variables: tuple[str, ...]) -> None:
    """Check template spec SPEC without building it (with --server: as the server would
    see it, from the build context sent to it)."""
    parsed = parse_spec(spec, parse_vars(variables))
    remote = remote_of(click.get_current_context())
    if remote is not None:
        with _sent_context(remote, parsed, quiet=True) as context:
            found = remote.post("/templates/validate", {
                "context": context, "spec": spec.name, "variables": parse_vars(variables)})
        click.echo(f"{spec} (on {remote.server}): template {found['name']} from "
                   f"{found['source']}, {found['provisioners']} provisioner(s), outputs "
                   + ", ".join(found["outputs"]))
        return
    click.echo(f"{spec}: template {parsed.name} from {parsed.source.describe()}, "
               f"{len(parsed.provisioners)} provisioner(s), outputs "
               + ", ".join(o.filename(parsed.name) for o in parsed.outputs))


@contextmanager
def _sent_context(remote: Remote, spec: TemplateSpec, quiet: bool) -> Iterator[str]:
    """The spec's directory packed and sent to the server's store for one command."""
    with remote.sent_context(spec.path, spec.files(), f"{spec.name}.context.tar",
                             quiet) as name:
        yield name


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
    """Build template SPEC: boot it, provision it, export every output, register it (with
    --server: on the server, from the spec's directory sent to it; the outputs and the
    manifest stay in the server's image store, for `image get`)."""
    from glasspane.templates.build import build_template
    parsed = parse_spec(spec, parse_vars(variables))
    select_outputs(parsed, only)  # an unknown --only fails before anything starts
    remote = remote_of(click.get_current_context())
    if remote is not None:
        if output_dir is not None:
            raise click.UsageError("--output-dir is local; with --server the outputs go to "
                                   "the server's image store")
        with _sent_context(remote, parsed, quiet) as context:
            task = remote.post("/templates/build", {
                "context": context, "spec": spec.name, "variables": parse_vars(variables),
                "only": list(only), "host": host, "register_template": not no_register})
            result = remote.wait(task, quiet)["result"]
        click.echo(f"built template {result['template']} on {remote.server} in "
                   f"{result['build_seconds']} s; stored there: {', '.join(result['stored'])}")
        if result["registered"]:
            click.echo(f"registered as template {result['template']} on {host}")
        return

    def echo(text: str) -> None:
        click.echo(text, nl=False)

    with byte_progress(not quiet) as start:
        result = build_template(Settings.load(), parsed, only=only, output_dir=output_dir,
                                host=host, register=not no_register, start=start,
                                echo=None if quiet else echo, references=FOLLOW_ANYWHERE)
    click.echo(f"built template {result.name} in {result.manifest['build_seconds']} s; "
               f"outputs in {result.directory}:")
    for output in result.manifest["outputs"]:
        click.echo(f"  {output['file']}  {human(output['file_size'])}  sha256 "
                   f"{output['sha256'][:16]}...  verified: {', '.join(output['verified'])}")
    if result.template is not None:
        click.echo(f"registered as template {result.template.name} on {result.template.host}")
