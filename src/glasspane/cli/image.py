"""`glasspane image ...`: inspect, convert, check and compare images, load them into VMs'
engines or XenServer pools, and keep them in the image store: the server's with --server
(where uploads, exports, conversions and build outputs live), or this machine's (the one a
local `glasspane serve` uses)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from glasspane.cli.operations import json_option, operations
from glasspane.cli.table import emit_json, human
from glasspane.errors import OutputError
from glasspane.images.detect import ALL_FORMATS

FORMAT = click.Choice(ALL_FORMATS, case_sensitive=False)
format_option = click.option("--format", "--from", "fmt", type=FORMAT,
                             help="Skip detection and read as this format.")


@click.group()
def image() -> None:
    """Inspect, convert, verify and compare disk images and VM archives; keep them in the
    image store (with --server: the server's, FILE arguments being local files sent for the
    command or `@NAME` for a stored image)."""


@image.command()
@click.argument("file", type=click.Path(dir_okay=False))
@format_option
@json_option
def info(file: str, fmt: str | None, as_json: bool) -> None:
    """Format, sizes, disks inside (XVA/OVA) and backing chain of FILE (with --server: a
    stored image, `@NAME`, or a local file sent for the occasion)."""
    data = operations().image_info(file, fmt, as_json)
    if as_json:
        emit_json(data)
        return
    from rich.console import Console
    from rich.table import Table
    table = Table(show_header=False, box=None)
    table.add_row("file", data["path"])
    table.add_row("format", data["format"])
    table.add_row("virtual size", f"{human(data['virtual_size'])} ({data['virtual_size']} bytes)")
    table.add_row("file size", human(data["file_size"]))
    if "vm" in data:
        vm = data["vm"]
        table.add_row("VM", f"{vm['name']}: {vm['vcpus']} vCPU, {vm['memory_mib']} MiB")
        for d in data["disks"]:
            table.add_row(f"disk {d['index']}", f"{d['name']}: {d['format']}, "
                          f"{human(d['virtual_size'])}, {human(d['allocated_size'])} allocated")
    else:
        table.add_row("allocated", human(data["allocated_size"]))
        skip = {"path", "format", "virtual_size", "file_size", "allocated_size", "backing_chain"}
        for key, value in data.items():
            if key not in skip and value is not None:
                table.add_row(key.replace("_", " "), str(value))
        for level, parent in enumerate(data.get("backing_chain", []), 1):
            table.add_row(f"parent {level}", f"{parent['path']} ({parent['format']})")
    Console().print(table)


@image.command()
@click.argument("src", type=click.Path(dir_okay=False))
@click.argument("dst", type=click.Path(dir_okay=False))
@click.option("--to", "to", type=FORMAT, help="Output format (default: from DST's extension).")
@click.option("--from", "src_format", type=FORMAT, help="Input format (default: detected).")
@click.option("--disk", type=int, help="Only this disk of an XVA/OVA (0-based, see info).")
@click.option("--compress", is_flag=True, help="Compress qcow2 clusters.")
@click.option("--vhd-type", type=click.Choice(["dynamic", "fixed"]), default="dynamic",
              show_default=True)
@click.option("--vhd-flavour", type=click.Choice(["xenserver", "qemu"]), default="xenserver",
              show_default=True,
              help="xenserver: exact size, creator 'tap' (XenServer, XCP-ng, CloudStack); "
                   "qemu: size rounded to CHS geometry (Virtual PC, qemu).")
@click.option("--xva-checksum", type=click.Choice(["sha1", "xxhash"]), default="sha1",
              show_default=True, help="sha1 imports everywhere; xxhash needs XAPI from 2019 on.")
@click.option("--name", "vm_name", help="VM name for XVA/OVA output.")
@click.option("--vcpus", type=click.IntRange(1, 1024), help="vCPUs for XVA/OVA output.")
@click.option("--memory", "memory_mib", type=click.IntRange(16, 1 << 24),
              help="Memory in MiB for XVA/OVA output.")
@click.option("--force", is_flag=True, help="Replace DST if it exists.")
@click.option("--verify", is_flag=True, help="Compare every output with the source after.")
@click.option("--sync/--no-sync", default=True, show_default=True,
              help="fsync outputs before renaming them into place.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable result.")
def convert(src: str, dst: str, to: str | None, src_format: str | None, disk: int | None,
            compress: bool, vhd_type: str, vhd_flavour: str, xva_checksum: str,
            vm_name: str | None, vcpus: int | None, memory_mib: int | None, force: bool,
            verify: bool, sync: bool, quiet: bool, as_json: bool) -> None:
    """Convert SRC to DST, any format to any format; all disks of an XVA/OVA, or one (with
    --server: on the server; SRC a local file or `@NAME`, DST a local file or `@NAME` to
    keep it in the server's store)."""
    done = operations().run(
        "image.convert", quiet or as_json, name=src, output=dst, format=to,
        source_format=src_format, disk=disk, compress=compress, vhd_type=vhd_type,
        vhd_flavour=vhd_flavour, xva_checksum=xva_checksum, vm_name=vm_name, vcpus=vcpus,
        memory_mib=memory_mib, replace=force, verify=verify, sync=sync)
    if as_json:  # as the toolkit names them: each output's format and file size
        emit_json({"outputs": [{"path": o.name, "format": o.kind, "virtual_size": o.virtual_size,
                                "file_size": o.size, "allocated": o.allocated,
                                "sha256": o.sha256 or None} for o in done.outputs],
                   "seconds": done.seconds, "verified": done.verified})
        return
    for o in done.outputs:
        click.echo(f"wrote {o.name}: {o.kind}, "
                   + (f"{human(o.virtual_size)} virtual, " if o.virtual_size is not None else "")
                   + f"{human(o.size)} file"
                   + (f", {human(o.allocated)} allocated" if o.allocated is not None else "")
                   + (f", in {done.seconds:.1f} s" if done.seconds is not None else "")
                   + (f", sha256 {o.sha256}" if o.sha256 else ""))
    for line in done.verified:
        click.echo(f"verified {line}")


@image.command()
@click.argument("file", type=click.Path(dir_okay=False))
@format_option
@json_option
def check(file: str, fmt: str | None, as_json: bool) -> None:
    """Check FILE's structure and checksums; exit 1 when a problem is found."""
    done = operations().run("image.check", as_json, name=file, source_format=fmt)
    if as_json:
        emit_json({"path": file, **done.model_dump()})
    elif done.ok:
        click.echo(f"{file}: {done.format}: no problems found")
    else:
        click.echo(f"{file}: {len(done.problems)} problem(s):")
        for p in done.problems:
            click.echo(f"  {p}")
    if not done.ok:
        sys.exit(1)


@image.command()
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option("--disk", type=int, help="Compare only this disk of XVA/OVA files.")
@json_option
def compare(a: str, b: str, disk: int | None, as_json: bool) -> None:
    """Same guest-visible content in A and B (any formats)?  Exit 0 if so, 1 if not."""
    done = operations().run("image.compare", as_json, a=a, b=b, disk=disk)
    if as_json:
        emit_json([c.model_dump() for c in done.comparisons])
    for line in [] if as_json else done.results:
        click.echo(line)
    if not done.identical:
        sys.exit(1)


@image.command()
@click.argument("vm")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--host", default="local", show_default=True, help="The VM's host.")
def load(vm: str, file: str, host: str) -> None:
    """Load a container image archive FILE (`docker save` / `podman save` output) into VM's
    engine, streamed over SSH: no registry needed."""
    loaded = operations().run("image.load", False, host=host, name=vm, image=file).loaded
    click.echo(f"VM {vm}: loaded {', '.join(loaded) or 'an untagged image'}")


@image.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--host", required=True, help="The XenServer/XCP-ng pool (a glasspane host).")
@click.option("--name", help="The new disk's name (default: FILE's name).")
@click.option("--sr", help="The SR, by name or UUID (default: the pool's default SR).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def upload(file: str, host: str, name: str | None, sr: str | None, quiet: bool) -> None:
    """Upload disk image FILE to a XenServer pool as a new VDI (raw and VHD as they are,
    any other format converted on the fly)."""
    label = name or os.path.basename(file).removeprefix("@")
    done = operations().run("image.upload", quiet, name=file, host=host, label=label, sr=sr)
    click.echo(f"uploaded {file} to {host} as disk {label} ({done.vdi})")


@image.command("list")
@json_option
def list_images(as_json: bool) -> None:
    """The images in the store: name, kind, size, SHA-256, who stored them."""
    items = operations().image_list()
    if as_json:
        emit_json(items)
        return
    for i in items:
        click.echo(f"{i.name}  {i.kind:<17} {human(i.size):>10}  sha256 {i.sha256[:12]}  "
                   f"{i.created_by}  {i.created_at}")


@image.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("name", required=False)
@click.option("--replace", is_flag=True, help="Replace a stored image of that name.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def put(file: Path, name: str | None, replace: bool, quiet: bool) -> None:
    """Store FILE as image NAME (default: FILE's name)."""
    stored = operations().image_put(file, name or file.name, replace, quiet)
    click.echo(f"stored {stored.name}: {stored.kind}, {human(stored.size)}, "
               f"sha256 {stored.sha256}")


@image.command()
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def get(name: str, file: Path | None, force: bool, quiet: bool) -> None:
    """Copy stored image NAME to FILE (default: ./NAME), checked against its SHA-256."""
    from glasspane.inventory.store import sha256_of
    dest = file or Path(name)
    expected = operations().image_get(name, dest, force, quiet)
    if sha256_of(dest) != expected:
        dest.unlink()
        raise OutputError(f"{dest}: SHA-256 differs from the stored image {name}'s; removed",
                          hint="download it again")
    click.echo(f"wrote {dest} ({human(dest.stat().st_size)}, sha256 {expected})")


@image.command()
@click.argument("names", nargs=-1, required=True)
def delete(names: tuple[str, ...]) -> None:
    """Delete stored images NAMES."""
    ops = operations()
    for name in names:
        ops.run("image.delete", name=name)
        click.echo(f"deleted {name}")
