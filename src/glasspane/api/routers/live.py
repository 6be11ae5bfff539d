"""Reads that go to the object itself rather than the inventory: a container's logs, details,
processes and resource use from its engine, a VM's container images, a VM's console."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, Query
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from glasspane.api.deps import CurrentUser, Services, services, viewer
from glasspane.containers import service as containers
from glasspane.vms import service as vms

router = APIRouter(tags=["live"])
MAX_LOG_BYTES = 1 << 20


@router.get("/containers/{host}/{vm}/{name}/logs", response_class=PlainTextResponse)
async def container_logs(host: str, vm: str, name: str, _: CurrentUser = Depends(viewer),
                         found: Services = Depends(services),
                         tail: int = Query(200, ge=1, le=10_000)) -> PlainTextResponse:
    """The last `tail` lines the container wrote (stdout and stderr, interleaved)."""
    def read() -> str:
        chunks, size = [], 0
        for _, data in containers.logs(found.settings, host, vm, name, tail=tail):
            chunks.append(data)
            size += len(data)
            if size > MAX_LOG_BYTES:
                break
        return b"".join(chunks).decode(errors="replace")
    return PlainTextResponse(await run_in_threadpool(read))


@router.get("/containers/{host}/{vm}/{name}/inspect")
async def container_inspect(host: str, vm: str, name: str, _: CurrentUser = Depends(viewer),
                            found: Services = Depends(services)) -> dict[str, Any]:
    return await run_in_threadpool(containers.inspect, found.settings, host, vm, name)


@router.get("/vms/{host}/{name}/console", response_class=PlainTextResponse)
async def vm_console(host: str, name: str, _: CurrentUser = Depends(viewer),
                     found: Services = Depends(services),
                     lines: int = Query(100, ge=1, le=5000)) -> PlainTextResponse:
    return PlainTextResponse(await run_in_threadpool(vms.console_log, found.settings, name,
                                                     host, lines))


@router.get("/containers/{host}/{vm}/{name}/top")
async def container_top(host: str, vm: str, name: str, _: CurrentUser = Depends(viewer),
                        found: Services = Depends(services)) -> dict[str, Any]:
    """The container's processes: column titles and one row per process."""
    titles, rows = await run_in_threadpool(containers.top, found.settings, host, vm, name)
    return {"titles": titles, "processes": rows}


@router.get("/containers/{host}/{vm}/{name}/stats")
async def container_stats(host: str, vm: str, name: str, _: CurrentUser = Depends(viewer),
                          found: Services = Depends(services)) -> dict[str, Any]:
    """CPU, memory, processes and network of the container, one sample."""
    numbers = await run_in_threadpool(containers.stats, found.settings, host, vm, name)
    return dataclasses.asdict(numbers)


@router.get("/vms/{host}/{name}/images", tags=["images"])
async def vm_images(host: str, name: str, _: CurrentUser = Depends(viewer),
                    found: Services = Depends(services)) -> list[dict[str, Any]]:
    """The container images in the VM's engine."""
    return await run_in_threadpool(containers.list_images, found.settings, host, name)
