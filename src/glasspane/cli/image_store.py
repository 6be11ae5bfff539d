"""`glasspane image list|put|get|delete`: the image store, the server's with --server (where
uploads, exports, conversions and build outputs live) or this machine's (the one a local
`glasspane serve` uses)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

import click

from glasspane.cli.remote import remote_of
from glasspane.cli.table import human
from glasspane.errors import OutputError
from glasspane.inventory.store import Actor, ImageStore
from glasspane.settings import Settings

# This machine's store belongs to whoever runs the CLI on it.
LOCAL = Actor("local", admin=True)


def _local_store() -> ImageStore:
    settings = Settings.load()
    return ImageStore(settings.data_dir, settings.store_reserve)


def register(image: click.Group) -> None:
    image.add_command(list_images)
    image.add_command(put)
    image.add_command(get)
    image.add_command(delete)


@click.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_images(as_json: bool) -> None:
    """The images in the store: name, kind, size, SHA-256, who stored them."""
    remote = remote_of(click.get_current_context())
    items: list[dict[str, Any]] = remote.get("/images") if remote is not None else [
        dataclasses.asdict(i) for i in _local_store().list()]
    if as_json:
        click.echo(json.dumps(items, indent=2))
        return
    for item in items:
        click.echo(f"{item['name']}  {item['kind']:<17} {human(item['size']):>10}  "
                   f"sha256 {item['sha256'][:12]}  {item['created_by']}  {item['created_at']}")


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("name", required=False)
@click.option("--replace", is_flag=True, help="Replace a stored image of that name.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def put(file: Path, name: str | None, replace: bool, quiet: bool) -> None:
    """Store FILE as image NAME (default: FILE's name)."""
    remote = remote_of(click.get_current_context())
    target = name or file.name
    if remote is not None:
        stored = remote.put_file(file, target, replace, quiet)
    else:
        store = _local_store()
        store.check_new(target, replace, LOCAL)
        with store.staging() as work:
            shutil.copyfile(file, work / target)
            stored = dataclasses.asdict(store.adopt(work / target, target, LOCAL, replace))
    click.echo(f"stored {stored['name']}: {stored['kind']}, {human(stored['size'])}, "
               f"sha256 {stored['sha256']}")


@click.command()
@click.argument("name")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def get(name: str, file: Path | None, force: bool, quiet: bool) -> None:
    """Copy stored image NAME to FILE (default: ./NAME), checked against its SHA-256."""
    dest = file or Path(name)
    remote = remote_of(click.get_current_context())
    if remote is not None:
        expected = remote.get(f"/images/{name}")["sha256"]
        remote.get_file(name, dest, force, quiet)
    else:
        store = _local_store()
        expected = store.get(name).sha256
        if dest.exists() and not force:
            raise OutputError(f"{dest} already exists", hint="use --force to replace it")
        partial = dest.with_name(f".{dest.name}.part-{os.getpid()}")
        try:
            shutil.copyfile(store.path(name), partial)
            os.replace(partial, dest)
        finally:
            partial.unlink(missing_ok=True)
    from glasspane.inventory.store import sha256_of
    if sha256_of(dest) != expected:
        dest.unlink()
        raise OutputError(f"{dest}: SHA-256 differs from the stored image {name}'s; removed",
                          hint="download it again")
    click.echo(f"wrote {dest} ({human(dest.stat().st_size)}, sha256 {expected})")


@click.command()
@click.argument("names", nargs=-1, required=True)
def delete(names: tuple[str, ...]) -> None:
    """Delete stored images NAMES."""
    remote = remote_of(click.get_current_context())
    for name in names:
        if remote is not None:
            remote.delete(f"/images/{name}")
        else:
            _local_store().delete(name, LOCAL)
        click.echo(f"deleted {name}")
