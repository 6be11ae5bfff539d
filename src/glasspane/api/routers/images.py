"""Images: the server's image store (disk images, container image archives, build
contexts) and what can be done with a stored image: its facts, a structural check, a
conversion to any format, a comparison, loading it into a VM's container engine, uploading
it to a XenServer pool as a disk.  Files go in by PUT (streamed to disk, never held in
memory) and out by GET .../content; the long operations are tasks.  An operator replaces
or deletes only the images they stored; an admin any."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from glasspane.api.deps import CurrentUser, Services, audited, operator, services, viewer
from glasspane.api.operations import add_routes
from glasspane.api.results import EngineImage, ImageFacts, StoredImageView
from glasspane.api.schemas import AUTHENTICATED, errors
from glasspane.containers import service as containers
from glasspane.images.detect import ALL_FORMATS
from glasspane.inventory.parsing import in_parser_thread
from glasspane.inventory.store import Actor, ImageStore
from glasspane.operations import images as _image_operations  # noqa: F401  (the catalogue)
from glasspane.operations.catalogue import CATALOGUE

router = APIRouter(tags=["images"], responses=AUTHENTICATED)
MAX_IMAGE = 4 << 40  # 4 TiB: the largest VHD is 2 TiB; a qcow2 or XVA may be more
DISK_KINDS = ("raw", "qcow2", "vhd", "vmdk", "xva", "ova")
FORMAT = "^(" + "|".join(ALL_FORMATS) + ")$"


def store_of(found: Services) -> ImageStore:
    return ImageStore(found.settings.data_dir, found.settings.store_reserve)


def actor(user: CurrentUser) -> Actor:
    return Actor(user.name, user.role == "admin")


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


@router.get("/vms/{host}/{name}/images", response_model=list[EngineImage],
            responses=errors(404, 409, 502, 503))
async def vm_images(host: str, name: str, _: CurrentUser = Depends(viewer),
                    found: Services = Depends(services)) -> list[dict[str, Any]]:
    """The container images in the VM's engine."""
    return await run_in_threadpool(containers.list_images, found.settings, host, name)


add_routes(router, [op for op in CATALOGUE.values() if op.name.startswith("image.")])
