"""Images: the server's image store (disk images, container image archives, build
contexts) and what can be done with a stored image: its facts, a structural check, a
conversion to any format, a comparison, loading it into a VM's container engine, uploading
it to a XenServer pool as a disk.  Files go in by PUT (streamed to disk, never held in
memory) and out by GET .../content; the long operations are tasks.  An operator replaces
or deletes only the images they stored; an admin any."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from glasspane.api.deps import CurrentUser, Services, audited, operator, services, viewer
from glasspane.api.results import EngineImage, ImageDeleted, ImageFacts, StoredImageView
from glasspane.api.routers.common import find_vm, submit
from glasspane.api.schemas import AUTHENTICATED, TaskRef, errors
from glasspane.containers import service as containers
from glasspane.images.detect import ALL_FORMATS
from glasspane.inventory.parsing import in_parser_thread
from glasspane.inventory.store import Actor, ImageStore

router = APIRouter(tags=["images"], responses=AUTHENTICATED)
MAX_IMAGE = 4 << 40  # 4 TiB: the largest VHD is 2 TiB; a qcow2 or XVA may be more
DISK_KINDS = ("raw", "qcow2", "vhd", "vmdk", "xva", "ova")
FORMAT = "^(" + "|".join(ALL_FORMATS) + ")$"


def store_of(found: Services) -> ImageStore:
    return ImageStore(found.settings.data_dir, found.settings.store_reserve)


def actor(user: CurrentUser) -> Actor:
    return Actor(user.name, user.role == "admin")


SOURCE_FORMAT = Field(default=None, alias="from", pattern=FORMAT,
                      description="read the source as this format instead of detecting it "
                                  "(\"raw\" for a raw disk whose name says otherwise)")


class Convert(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    output: str = Field(min_length=1, max_length=128, description="the new stored image")
    format: str | None = Field(default=None, pattern=FORMAT,
                               description="default: from the output's extension")
    source_format: str | None = SOURCE_FORMAT
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


class Check(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source_format: str | None = SOURCE_FORMAT


class Compare(BaseModel):
    model_config = ConfigDict(extra="forbid")
    a: str = Field(min_length=1, max_length=128)
    b: str = Field(min_length=1, max_length=128)
    disk: int | None = Field(default=None, ge=0, le=255)


class Load(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(min_length=1, max_length=128, description="a stored archive")


class ToPool(BaseModel):
    model_config = ConfigDict(extra="forbid")
    host: str = Field(min_length=1, max_length=64, description="a XenServer/XCP-ng pool")
    name: str | None = Field(default=None, max_length=255, description="the new disk's name")
    sr: str | None = Field(default=None, max_length=255, description="SR name or UUID")


@router.get("/images", response_model=list[StoredImageView])
async def list_images(_: CurrentUser = Depends(viewer),
                      found: Services = Depends(services)) -> list[dict[str, Any]]:
    # A file placed in the store by hand is described (parsed) when first listed.
    return await in_parser_thread(lambda: [dataclasses.asdict(i)
                                           for i in store_of(found).list()])


@router.put("/images/{name}", status_code=201, response_model=StoredImageView,
            responses=errors(408, 409, 507),
            dependencies=[audited("image.put", "image", "{name}")],
            openapi_extra={"requestBody": {"required": True, "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}}})
async def put_image(name: str, request: Request, user: CurrentUser = Depends(operator),
                    found: Services = Depends(services),
                    replace: bool = Query(False)) -> dict[str, Any]:
    """Store the request body as image `name` (any size up to 4 TiB; a declared length that
    cannot fit on the server's disk is refused before anything is written)."""
    store = store_of(found)
    store.check_new(name, replace, actor(user))
    declared = request.headers.get("content-length")
    if declared and declared.isdigit():
        store.check_room(int(declared))
    stored = await store.receive(name, request.stream(), actor(user), MAX_IMAGE, replace)
    return dataclasses.asdict(stored)


# Unset fields stay out: a file has no `info`, a disk image no `vm` (the CLI tells them so).
@router.get("/images/{name}", response_model=ImageFacts, response_model_exclude_unset=True,
            responses=errors(404))
async def get_image(name: str, _: CurrentUser = Depends(viewer),
                    found: Services = Depends(services),
                    source_format: str | None = Query(None, alias="from", pattern=FORMAT)
                    ) -> dict[str, Any]:
    """The stored image and, for a disk image, what `image info` says of it (its backing
    chain as stored images' names: nothing else can be one)."""
    store = store_of(found)

    def facts() -> dict[str, Any]:
        stored = store.get(name)  # describes (parses) a file placed by hand
        view: dict[str, Any] = dataclasses.asdict(stored)
        if stored.kind in DISK_KINDS or source_format is not None:
            from glasspane.images.inspect import image_info
            with store.confined():  # errors name the stored image, not the server's file
                info = store.confine(image_info(str(store.path(name)), source_format,
                                                store.references()))
            info.pop("path", None)
            view["info"] = info
        return view
    return await in_parser_thread(facts)


@router.get("/images/{name}/content", response_class=FileResponse,
            responses={200: {"description": "The stored file, as it is", "content": {
                "application/octet-stream": {"schema": {"type": "string",
                                                        "format": "binary"}}}},
                       **errors(404)})
def download_image(name: str, _: CurrentUser = Depends(viewer),
                   found: Services = Depends(services)) -> FileResponse:
    return FileResponse(store_of(found).path(name), media_type="application/octet-stream",
                        filename=name)


@router.delete("/images/{name}", response_model=ImageDeleted, responses=errors(404),
               dependencies=[audited("image.delete", "image", "{name}")])
def delete_image(name: str, user: CurrentUser = Depends(operator),
                 found: Services = Depends(services)) -> dict[str, Any]:
    """Delete the image: the operator who stored it, or an admin."""
    store_of(found).delete(name, actor(user))
    return {"deleted": name}


def _stored(found: Services, *names: str) -> None:
    for name in names:
        store_of(found).path(name)  # 404 now, not a failed task later


@router.post("/images/{name}/check", status_code=202, response_model=TaskRef,
             responses=errors(404, 408, 413),
             dependencies=[audited("image.check", "image", "{name}")])
def check_image(name: str, request: Request, body: Check | None = None,
                user: CurrentUser = Depends(operator),
                found: Services = Depends(services)) -> dict[str, Any]:
    """Check the image's structure and checksums (a task; the problems are its result)."""
    _stored(found, name)
    source_format = body.source_format if body is not None else None
    return submit(request, found, user, "image.check", "image", name,
                  {"name": name, "from": source_format}, pinned=True)


@router.post("/images/{name}/convert", status_code=202, response_model=TaskRef,
             responses=errors(404, 408, 409, 413),
             dependencies=[audited("image.convert", "image", "{name}")])
def convert_image(name: str, body: Convert, request: Request,
                  user: CurrentUser = Depends(operator),
                  found: Services = Depends(services)) -> dict[str, Any]:
    """Convert the image into a new stored image (a task with byte progress; the output is
    compared with the source unless `verify` is false)."""
    _stored(found, name)
    store_of(found).check_new(body.output, body.replace, actor(user))
    params = body.model_dump(exclude={"source_format"})
    return submit(request, found, user, "image.convert", "image", name,
                  {"name": name, **params, "from": body.source_format}, cancellable=True,
                  pinned=True)


@router.post("/images/compare", status_code=202, response_model=TaskRef,
             responses=errors(404, 408, 413),
             dependencies=[audited("image.compare", "image")])
def compare_images(body: Compare, request: Request, user: CurrentUser = Depends(operator),
                   found: Services = Depends(services)) -> dict[str, Any]:
    """Same guest-visible content in `a` and `b`? (a task; the verdict is its result)."""
    _stored(found, body.a, body.b)
    return submit(request, found, user, "image.compare", "image", f"{body.a},{body.b}",
                  body.model_dump(), pinned=True)


@router.post("/images/{name}/upload", status_code=202, response_model=TaskRef,
             responses=errors(404, 408, 413),
             dependencies=[audited("image.upload", "image", "{name}")])
def upload_to_pool(name: str, body: ToPool, request: Request,
                   user: CurrentUser = Depends(operator),
                   found: Services = Depends(services)) -> dict[str, Any]:
    """Upload the disk image to a XenServer/XCP-ng pool as a new VDI (a task)."""
    _stored(found, name)
    return submit(request, found, user, "image.upload", "image", name,
                  {"image": name, **body.model_dump()}, pinned=True)


@router.get("/vms/{host}/{name}/images", response_model=list[EngineImage],
            responses=errors(404, 409, 502, 503))
async def vm_images(host: str, name: str, _: CurrentUser = Depends(viewer),
                    found: Services = Depends(services)) -> list[dict[str, Any]]:
    """The container images in the VM's engine."""
    return await run_in_threadpool(containers.list_images, found.settings, host, name)


@router.post("/vms/{host}/{name}/images", status_code=202, response_model=TaskRef,
             responses=errors(404, 408, 409, 413),
             dependencies=[audited("image.load", "vm", "{host}/{name}")])
def load_into_vm(host: str, name: str, body: Load, request: Request,
                 user: CurrentUser = Depends(operator),
                 found: Services = Depends(services)) -> dict[str, Any]:
    """Load a stored container image archive into the VM's engine (a task)."""
    stored = store_of(found).get(body.image)
    if stored.kind != "container-archive":
        raise HTTPException(422, f"image {body.image!r} is a {stored.kind}, not a container "
                                 "image archive (`docker save` / `podman save` output)")
    with found.database.session() as session:
        state = find_vm(session, host, name).power_state
    if state != "running":
        raise HTTPException(409, f"VM {name} on host {host} is {state}: start it first")
    return submit(request, found, user, "image.load", "vm", f"{host}/{name}",
                  {"host": host, "vm": name, "image": body.image}, pinned=True)
