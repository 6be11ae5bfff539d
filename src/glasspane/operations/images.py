"""Image operations: check, convert and compare images, delete a stored one, upload one to
a XenServer pool as a disk, load a container image archive into a VM's engine.  Their file
fields name stored images on a server and the user's own files when the CLI runs them here
(`operations.files`: the one place the two differ)."""

from __future__ import annotations

import dataclasses
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from pydantic import Field
from sqlalchemy import select

from glasspane.enums import PowerState
from glasspane.errors import Conflict, ImageError, NotFound
from glasspane.images.detect import ALL_FORMATS
from glasspane.operations.catalogue import Admission, Command, Context, Result, operation
from glasspane.operations.files import actor_of, bytes_of, files_of, store_of

FORMAT = "^(" + "|".join(ALL_FORMATS) + ")$"


def stored_name(description: str | None = None) -> Any:
    """A field naming a stored image (here: a handle for the user's file)."""
    return Field(min_length=1, max_length=128, description=description)


def source_format() -> Any:
    return Field(default=None, alias="from", pattern=FORMAT,
                 description="read the source as this format instead of detecting it "
                             "(\"raw\" for a raw disk whose name says otherwise)")


def admit_stored(*fields: str) -> Any:
    """Request-time check that the command's `fields` name stored images: a 404 now, not a
    failed task later."""
    def admit(admission: Admission, command: Command) -> None:
        store = store_of(admission.settings)
        for field in fields:
            if getattr(command, field) is not None:
                store.path(getattr(command, field))
    return admit


class ImageRef(Command):
    name: str = stored_name()


class ImageDeleted(Result):
    deleted: str


@operation("image.delete", "DELETE", "/images/{name}", ImageRef, ImageDeleted,
           object_type="image", target_name="{name}", admit=admit_stored("name"))
def delete(context: Context, command: ImageRef) -> ImageDeleted:
    """Delete the image: the operator who stored it, or an admin."""
    store_of(context.settings).delete(command.name, actor_of(context))
    return ImageDeleted(deleted=command.name)


# -- check ------------------------------------------------------------------------------------

class CheckImage(Command):
    name: str = stored_name()
    source_format: str | None = source_format()


class Checked(Result):
    format: str | None
    ok: bool
    problems: list[str]


@operation("image.check", "POST", "/images/{name}/check", CheckImage, Checked, task=True,
           pinned=True, object_type="image", target_name="{name}", admit=admit_stored("name"),
           files=("name",))
def check(context: Context, command: CheckImage) -> Checked:
    """Check the image's structure and checksums (a task; the problems are its result)."""
    from glasspane.images.check import check_image
    files = files_of(context)
    with files.confined():
        path = files.path(command.name)
        context.progress(5, f"checking {path.name}")
        report = check_image(str(path), command.source_format, files.references())
        return Checked.model_validate(files.confine({"format": report.format, "ok": report.ok,
                                        "problems": [str(p) for p in report.problems]}))


# -- compare ----------------------------------------------------------------------------------

class CompareImages(Command):
    a: str = stored_name()
    b: str = stored_name()
    disk: int | None = Field(default=None, ge=0, le=255)


class Comparison(Result):
    identical: bool
    first_difference: int | None = None
    size_a: int = 0
    size_b: int = 0
    disk: int | None = None


class Compared(Result):
    identical: bool
    results: list[str] = Field(description="each disk's comparison, in words")
    comparisons: list[Comparison] = Field(default_factory=list)


@operation("image.compare", "POST", "/images/compare", CompareImages, Compared, task=True,
           pinned=True, object_type="image", object_name=lambda c: f"{c.a},{c.b}",
           admit=admit_stored("a", "b"), files=("a", "b"))
def compare(context: Context, command: CompareImages) -> Compared:
    """Same guest-visible content in `a` and `b`? (a task; the verdict is its result)."""
    from glasspane.images.compare import compare_images
    files = files_of(context)
    with files.confined():
        a, b = files.path(command.a), files.path(command.b)
        context.progress(5, f"comparing {a.name} and {b.name}")
        found = compare_images(str(a), str(b), command.disk, files.references())
        return Compared.model_validate(files.confine({
            "identical": all(r.identical for r in found),
            "results": [r.describe() for r in found],
            "comparisons": [dataclasses.asdict(r) for r in found]}))


# -- convert ----------------------------------------------------------------------------------

class ConvertImage(Command):
    name: str = stored_name()
    output: str = stored_name("the new stored image")
    format: str | None = Field(default=None, pattern=FORMAT,
                               description="default: from the output's extension")
    source_format: str | None = source_format()
    disk: int | None = Field(default=None, ge=0, le=255, description="one disk of an XVA/OVA")
    compress: bool = False
    vhd_type: str = Field(default="dynamic", pattern="^(dynamic|fixed)$")
    vhd_flavour: str = Field(default="xenserver", pattern="^(xenserver|qemu)$")
    xva_checksum: str = Field(default="sha1", pattern="^(sha1|xxhash)$")
    vm_name: str | None = Field(default=None, max_length=128)
    vcpus: int | None = Field(default=None, ge=1, le=1024)
    memory_mib: int | None = Field(default=None, ge=16, le=1 << 24)
    verify: bool = Field(default=True, description="compare the output with the source")
    replace: bool = False
    sync: bool = Field(default=True, description="fsync the outputs before they are kept")


class ConvertedImage(Result):
    name: str
    size: int
    sha256: str
    kind: str
    created_by: str
    created_at: str
    virtual_size: int | None = None
    allocated: int | None = None


class Converted(Result):
    outputs: list[ConvertedImage]
    verified: list[str]
    seconds: float | None = None

    def written(self) -> list[str]:
        return [o.name for o in self.outputs]


def admit_convert(admission: Admission, command: ConvertImage) -> None:
    admit_stored("name")(admission, command)
    store_of(admission.settings).check_new(command.output, command.replace,
                                           actor_of(admission))


@operation("image.convert", "POST", "/images/{name}/convert", ConvertImage, Converted,
           task=True, pinned=True, cancellable=True, object_type="image", target_name="{name}",
           admit=admit_convert, files=("name",), output="output", bytes=True)
def convert(context: Context, command: ConvertImage) -> Converted:
    """Convert the image into a new stored image (a task with byte progress; the output is
    compared with the source unless `verify` is false)."""
    from glasspane.images.base import WriteOptions
    from glasspane.images.convert import convert as convert_image
    files, began = files_of(context), time.monotonic()
    options = WriteOptions(compress=command.compress, vhd_type=command.vhd_type,
                           vhd_flavour=command.vhd_flavour, xva_checksum=command.xva_checksum,
                           vm_name=command.vm_name, vcpus=command.vcpus,
                           memory_mib=command.memory_mib)
    with files.confined():
        source = str(files.path(command.name))
        files.check_new(command.output, command.replace)
        with files.staging(command.output) as work:
            outputs = convert_image(
                source, str(work / files.filename(command.output)), to=command.format,
                disk=command.disk, src_format=command.source_format, options=options,
                overwrite=True, sync=command.sync, start=bytes_of(context),
                references=files.references())
            verified = _verified(context, command, source, outputs) if command.verify else []
            for o in outputs:  # all or none: an output that may not replace is refused first
                files.check_new(Path(o.path).name, command.replace)
            kept = [{**dataclasses.asdict(files.keep(Path(o.path), command.replace)),
                     "virtual_size": o.virtual_size, "allocated": o.allocated}
                    for o in outputs]
        return Converted.model_validate(files.confine({"outputs": kept, "verified": verified,
                                          "seconds": round(time.monotonic() - began, 3)}))


def _verified(context: Context, command: ConvertImage, source: str, outputs: list[Any]
              ) -> list[str]:
    """Each output compared with the source: the comparisons, or an ImageError."""
    from glasspane.images.compare import compare_images
    context.progress(96, "comparing the output with the source")
    lines = []
    for index, output in enumerate(outputs):
        disk = command.disk if command.disk is not None else (index if len(outputs) > 1
                                                              else None)
        for result in compare_images(source, output.path, disk, files_of(context).references(),
                                     command.source_format):
            if not result.identical:
                raise ImageError(f"verification failed: {Path(output.path).name}: "
                                 f"{result.describe()}")
            lines.append(f"{Path(output.path).name}: {result.describe()}")
    return lines


# -- to a pool, into a VM ---------------------------------------------------------------------

class Upload(Command):
    name: str = stored_name()
    host: str = Field(min_length=1, max_length=64, description="a XenServer/XCP-ng pool")
    label: str | None = Field(default=None, alias="name", max_length=255,
                              description="the new disk's name")
    sr: str | None = Field(default=None, max_length=255, description="SR name or UUID")


class Uploaded(Result):
    vdi: str
    name: str


@operation("image.upload", "POST", "/images/{name}/upload", Upload, Uploaded, task=True,
           pinned=True, object_type="image", target_name="{name}", admit=admit_stored("name"),
           files=("name",), bytes=True)
def upload(context: Context, command: Upload) -> Uploaded:
    """Upload the disk image to a XenServer/XCP-ng pool as a new VDI (a task)."""
    from glasspane.hosts.service import host_driver
    from glasspane.hypervisors.capabilities import Capability, require
    files = files_of(context)
    with files.confined():
        path = files.path(command.name)
        label = command.label or path.name
        with host_driver(context.settings, command.host) as connected:
            driver = require(connected, Capability.IMAGE_TRANSFER, "uploading a disk",
                             hint="import it as a template instead (`glasspane template "
                                  "import`)")
            vdi = driver.upload_disk(str(path), label, bytes_of(context)(
                path.stat().st_size, f"{label} to {command.host}"), command.sr,
                files.references())
        return Uploaded(vdi=vdi, name=label)


class Load(Command):
    host: str = Field(min_length=1, max_length=64)
    name: str = Field(min_length=1, max_length=128, description="the VM")
    image: str = stored_name("a stored archive")


class Loaded(Result):
    loaded: list[str]


def admit_load(admission: Admission, command: Load) -> None:
    from glasspane.inventory.models import Host, Vm
    stored_image = store_of(admission.settings).get(command.image)
    if stored_image.kind != "container-archive":
        raise ImageError(f"image {command.image!r} is a {stored_image.kind}, not a container "
                         "image archive (`docker save` / `podman save` output)")
    with admission.database.session() as session:
        state = session.scalar(select(Vm.power_state).join(Host).where(
            Host.name == command.host, Vm.name == command.name))
    if state is None:
        raise NotFound(f"no VM named {command.name!r} on host {command.host}")
    if state != PowerState.RUNNING:
        raise Conflict(f"VM {command.name} on host {command.host} is {state}: start it first")


@operation("image.load", "POST", "/vms/{host}/{name}/images", Load, Loaded, task=True,
           pinned=True, object_type="vm", target_name="{host}/{name}", admit=admit_load,
           files=("image",), bytes=True)
def load(context: Context, command: Load) -> Loaded:
    """Load a stored container image archive into the VM's engine (a task)."""
    from glasspane.containers.deploy import load_image
    from glasspane.inventory.handlers import containers_refreshed
    files = files_of(context)
    with files.confined():
        path = files.path(command.image)
        with containers_refreshed(context.task) if context.task is not None else nullcontext():
            loaded = load_image(context.settings, command.host, command.name, path,
                                bytes_of(context)(path.stat().st_size,
                                                  f"loading into {command.name}"))
        return Loaded(loaded=loaded)
