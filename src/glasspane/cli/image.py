"""`glasspane image info|convert|check|compare|load|upload` (and the store's commands, in
image_store.py)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from glasspane.cli.image_store import register
from glasspane.cli.progress import byte_progress
from glasspane.cli.remote import Remote, remote_of
from glasspane.cli.table import human
from glasspane.errors import UsageError
from glasspane.images.base import WriteOptions
from glasspane.images.check import CheckReport, check_image
from glasspane.images.compare import compare_images
from glasspane.images.convert import convert as convert_image
from glasspane.images.detect import ALL_FORMATS
from glasspane.images.inspect import image_info
from glasspane.images.references import FOLLOW_ANYWHERE

FORMAT = click.Choice(ALL_FORMATS, case_sensitive=False)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@click.group()
def image() -> None:
    """Inspect, convert, verify and compare disk images and VM archives; keep them in the
    image store (with --server: the server's, FILE arguments being local files sent for the
    command or `@NAME` for a stored image)."""


register(image)


@image.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "--from", "fmt", type=FORMAT,
              help="Skip detection and read as this format.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def info(file: str, fmt: str | None, as_json: bool) -> None:
    """Format, sizes, disks inside (XVA/OVA) and backing chain of FILE (with --server: a
    stored image, `@NAME`, or a local file sent for the occasion)."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        with remote.stored_input(file, quiet=as_json) as name:
            stored = remote.get(f"/images/{name}", **{"from": fmt})
        if "info" not in stored:
            raise UsageError(f"{file} is a {stored['kind']}, not a disk image or VM archive")
        data = {"path": file, **stored["info"]}
    else:
        # The user's own files: a backing file is read wherever the image names it.
        data = image_info(file, fmt, FOLLOW_ANYWHERE)
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
    remote = remote_of(click.get_current_context())
    if remote is not None:
        _convert_remote(remote, src, dst, {
            "format": to, "from": src_format, "disk": disk, "compress": compress,
            "vhd_type": vhd_type, "vhd_flavour": vhd_flavour, "xva_checksum": xva_checksum,
            "vm_name": vm_name, "vcpus": vcpus, "memory_mib": memory_mib, "verify": verify,
            "replace": force},
            force, quiet or as_json, as_json)
        return
    options = WriteOptions(compress=compress, vhd_type=vhd_type, vhd_flavour=vhd_flavour,
                           xva_checksum=xva_checksum, vm_name=vm_name, vcpus=vcpus,
                           memory_mib=memory_mib)
    began = time.monotonic()
    with byte_progress(not quiet and not as_json) as start:
        outputs = convert_image(src, dst, to=to, src_format=src_format, disk=disk,
                                options=options, overwrite=force, sync=sync, start=start,
                                references=FOLLOW_ANYWHERE)
    elapsed = time.monotonic() - began
    verified: list[str] = []
    if verify:
        verified = _verify(src, outputs, disk, src_format)
    if as_json:
        emit_json({"outputs": [vars(o) for o in outputs], "seconds": round(elapsed, 3),
                   "verified": verified})
        return
    for o in outputs:
        click.echo(f"wrote {o.path}: {o.format}, {human(o.virtual_size)} virtual, "
                   f"{human(o.file_size)} file, {human(o.allocated)} allocated, "
                   f"in {elapsed:.1f} s")
    for line in verified:
        click.echo(line)


def _convert_remote(remote: Remote, src: str, dst: str, body: dict[str, Any], force: bool,
                    quiet: bool, as_json: bool) -> None:
    with remote.stored_input(src, quiet) as source:
        def make(name: str) -> tuple[Any, list[str]]:
            task = remote.post(f"/images/{source}/convert", {"output": name, **body})
            result = remote.wait(task, quiet)["result"]
            return result, [o["name"] for o in result["outputs"]]
        result = remote.fetch_output(dst, make, force, quiet)
    if as_json:
        emit_json(result)
        return
    for o in result["outputs"]:
        where = f"{o['name']} in {remote.server}'s store" if dst.startswith("@") else \
            str(Path(dst).with_name(o["name"].split("-", 2)[2]))
        click.echo(f"wrote {where}: {o['kind']}, {human(o['size'])}, converted on "
                   f"{remote.server}, sha256 {o['sha256']}")
    for line in result["verified"]:
        click.echo(f"verified {line}")


def _verify(src: str, outputs: list[Any], disk: int | None,
            src_format: str | None) -> list[str]:
    lines = []
    if len(outputs) == 1:
        results = compare_images(src, outputs[0].path, disk, FOLLOW_ANYWHERE, src_format)
        lines += [f"verified {outputs[0].path}: {r.describe()}" for r in results]
        failed = [r for r in results if not r.identical]
    else:
        failed = []
        for index, o in enumerate(outputs):
            r = compare_images(src, o.path, index if disk is None else disk,
                               FOLLOW_ANYWHERE, src_format)[0]
            lines.append(f"verified {o.path}: {r.describe()}")
            if not r.identical:
                failed.append(r)
    if failed:
        for line in lines:
            click.echo(line, err=True)
        raise click.ClickException("verification failed: the output differs from the source")
    return lines


@image.command()
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--format", "--from", "fmt", type=FORMAT,
              help="Skip detection and read as this format.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def check(file: str, fmt: str | None, as_json: bool) -> None:
    """Check FILE's structure and checksums; exit 1 when a problem is found."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        with remote.stored_input(file, quiet=as_json) as name:
            found = remote.wait(remote.post(f"/images/{name}/check", {"from": fmt}),
                                quiet=True)["result"]
        report = CheckReport(file, found["format"], [])
        problems: list[Any] = found["problems"]
    else:
        report = check_image(file, fmt, FOLLOW_ANYWHERE)
        problems = report.problems
    _report_check(file, report, problems, as_json)


def _report_check(file: str, report: CheckReport, problems: list[Any],
                  as_json: bool) -> None:
    if as_json:
        emit_json({"path": report.path, "format": report.format, "ok": not problems,
                   "problems": [p if isinstance(p, str) else vars(p) for p in problems]})
    elif not problems:
        click.echo(f"{file}: {report.format}: no problems found")
    else:
        click.echo(f"{file}: {len(problems)} problem(s):")
        for p in problems:
            click.echo(f"  {p}")
    if problems:
        sys.exit(1)


@image.command()
@click.argument("a", type=click.Path(dir_okay=False))
@click.argument("b", type=click.Path(dir_okay=False))
@click.option("--disk", type=int, help="Compare only this disk of XVA/OVA files.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def compare(a: str, b: str, disk: int | None, as_json: bool) -> None:
    """Same guest-visible content in A and B (any formats)?  Exit 0 if so, 1 if not."""
    remote = remote_of(click.get_current_context())
    if remote is not None:
        with remote.stored_input(a, as_json) as first, remote.stored_input(b, as_json) as second:
            found = remote.wait(remote.post("/images/compare", {
                "a": first, "b": second, "disk": disk}), quiet=True)["result"]
        lines, identical = found["results"], found["identical"]
    else:
        results = compare_images(a, b, disk, FOLLOW_ANYWHERE)
        lines, identical = [r.describe() for r in results], all(r.identical for r in results)
        if as_json:
            emit_json([vars(r) for r in results])
            lines = []
    if as_json and remote is not None:
        emit_json(found)
    else:
        for line in lines:
            click.echo(line)
    if not identical:
        sys.exit(1)


@image.command()
@click.argument("vm")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--host", default="local", show_default=True, help="The VM's host.")
def load(vm: str, file: str, host: str) -> None:
    """Load a container image archive FILE (`docker save` / `podman save` output) into VM's
    engine, streamed over SSH: no registry needed."""
    from glasspane.containers.deploy import load_image
    from glasspane.settings import Settings
    remote = remote_of(click.get_current_context())
    if remote is not None:
        with remote.stored_input(file) as name:
            task = remote.post(f"/vms/{host}/{vm}/images", {"image": name})
            loaded = remote.wait(task)["result"]["loaded"]
        click.echo(f"VM {vm}: loaded {', '.join(loaded) or 'an untagged image'}")
        return
    path = Path(file)
    with byte_progress(True) as start:
        loaded = load_image(Settings.load(), host, vm, path,
                            start(path.stat().st_size, f"loading into {vm}"))
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
    import os

    from glasspane.hosts.service import host_driver
    from glasspane.hypervisors.capabilities import Capability, require
    from glasspane.settings import Settings
    label = name or os.path.basename(file).removeprefix("@")
    remote = remote_of(click.get_current_context())
    if remote is not None:
        with remote.stored_input(file, quiet) as stored:
            task = remote.post(f"/images/{stored}/upload", {"host": host, "name": label,
                                                            "sr": sr})
            uuid = remote.wait(task, quiet)["result"]["vdi"]
        click.echo(f"uploaded {file} to {host} as disk {label} ({uuid})")
        return
    with host_driver(Settings.load(), host) as connected:
        driver = require(connected, Capability.IMAGE_TRANSFER, "uploading a disk",
                         hint="use `glasspane template import` instead")
        with byte_progress(not quiet) as start:
            uuid = driver.upload_disk(file, label, start(os.path.getsize(file),
                                                         f"{label} to {host}"), sr,
                                      FOLLOW_ANYWHERE)
    click.echo(f"uploaded {file} to {host} as disk {label} ({uuid})")
