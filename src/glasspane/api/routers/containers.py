"""Containers inside VMs: listing from the inventory (with the operations the caller may run
on each now), and their logs from the engine itself.  Running a container, each action on
one and the other reads that go to the engine (details, processes, resource use, the engine
itself) are routes made from the operations catalogue (`glasspane.operations.containers`)."""

from __future__ import annotations

from functools import cache, lru_cache
from typing import Any

from fastapi import APIRouter, Depends, Query, Response
from fastapi.responses import PlainTextResponse
from pydantic import TypeAdapter
from sqlalchemy import bindparam, select
from starlette.concurrency import run_in_threadpool

from glasspane.api.deps import (
    CurrentUser,
    Services,
    audited,
    off_loop,
    operator,
    page,
    services,
    viewer,
)
from glasspane.api.operations import add_routes
from glasspane.api.results import (
    ContainerView,
)
from glasspane.api.routers.common import (
    Limit,
    Offset,
    contains,
    count_all,
    encoded,
    host_id_of,
    like_pattern,
    page_of,
    total_of,
)
from glasspane.api.schemas import AUTHENTICATED, REACHES_HOST, Page
from glasspane.containers import service as containers
from glasspane.enums import ContainerAction
from glasspane.errors import NotFound
from glasspane.inventory.models import Container, Host, Vm
from glasspane.operations.catalogue import CATALOGUE
from glasspane.operations.containers import container_actions

router = APIRouter(tags=["containers"], responses=AUTHENTICATED)
CONTAINER_PAGE = TypeAdapter(Page[ContainerView])
MAX_LOG_BYTES = 1 << 20



# What a listing reads of each container: its view's columns, not the ORM object.
CONTAINER_COLUMNS = (Container.name, Container.engine_id, Container.image, Container.state,
                     Container.status, Container.ports, Container.app, Container.created)


@lru_cache(maxsize=256)
def _actions(role: str, state: str | None, operations: int) -> tuple[str, ...]:
    """`container_actions`, remembered: it depends on the role, the state and the catalogue
    alone (`operations`, the catalogue's size, keys it), and asking the catalogue for each
    container of each page was a twentieth of a page's first reading."""
    return tuple(container_actions(role, state))


def container_view(c: Any, host_name: str, vm_name: str, role: str) -> dict[str, Any]:
    """A container's view from `c` (its inventory row, or a row of `CONTAINER_COLUMNS`), with
    the actions a caller of `role` may run on it now."""
    return {"host": host_name, "vm": vm_name, "name": c.name, "id": c.engine_id,
            "image": c.image, "state": c.state, "status": c.status, "ports": c.ports,
            "app": c.app, "created": c.created,
            "actions": list(_actions(role, c.state, len(CATALOGUE)))}


@cache
def _listing(host: bool, vm: bool, state: bool, q: bool) -> tuple[Any, Any]:
    """The container listing's statements (its page of rows, its count) for the filters
    given, their values bound: built once per shape, not per request."""
    ids = select(Container.id)
    if host or vm:
        vms = select(Vm.id)
        if host:
            vms = vms.where(Vm.host_id == host_id_of("host"))
        if vm:
            vms = vms.where(Vm.name == bindparam("vm", type_=Vm.name.type))
        ids = ids.where(Container.vm_id.in_(vms))
    if state:
        ids = ids.where(Container.state == bindparam("state", type_=Container.state.type))
    if q:
        ids = ids.where(contains(Container.name, "q"))
    rows = select(*CONTAINER_COLUMNS, Host.name.label("host_name"),
                  Vm.name.label("vm_name")).join(Vm, Container.vm_id == Vm.id) \
        .join(Host, Vm.host_id == Host.id) \
        .where(Container.id.in_(page_of(ids, Container.sort_key))) \
        .order_by(Container.sort_key)
    return rows, count_all(ids)


@router.get("/containers", response_model=Page[ContainerView])
async def list_containers(user: CurrentUser = Depends(viewer), found: Services = Depends(services),
                    host: str | None = Query(None, max_length=64),
                    vm: str | None = Query(None, max_length=128),
                    state: str | None = Query(None, max_length=16),
                    q: str | None = Query(None, max_length=128, description="name contains"),
                    limit: int = Limit, offset: int = Offset) -> Response:
    rows_of, count = _listing(bool(host), bool(vm), bool(state), bool(q))
    params = {"host": host, "vm": vm, "state": state, "q": like_pattern(q) if q else None,
              "limit": limit, "offset": offset}

    def read() -> Response:
        with found.database.reading() as connection:
            rows = connection.execute(rows_of, params).all()
            total = total_of(found, connection, count, params, ("containers", host, vm, state, q),
                             offset, limit, len(rows))
        return encoded(CONTAINER_PAGE, page(limit, offset, total, [
            container_view(r, r.host_name, r.vm_name, user.role) for r in rows]))
    return await off_loop(found, user, read)


add_routes(router, [op for op in CATALOGUE.values() if op.name.startswith("container.")])


@router.post("/containers/{host}/{vm}/{name}/actions/{action}", include_in_schema=False,
             dependencies=[audited("container.{action}", "container", "{host}/{vm}/{name}")])
def unknown_container_action(host: str, vm: str, name: str, action: str,
                             _: CurrentUser = Depends(operator)) -> None:
    """Any other action: a 404 naming the ones there are (after the routes of those)."""
    del host, vm, name
    raise NotFound(f"no container action {action!r} (one of {', '.join(ContainerAction)})")


# The route makes its own text answer; a response class with no media type keeps the error
# bodies documented as the JSON they are (FastAPI gives them the route's class's type).
@router.get("/containers/{host}/{vm}/{name}/logs", response_class=Response,
            responses={200: {"description": "The log's lines", "content": {
                "text/plain": {"schema": {"type": "string"}}}}, **REACHES_HOST})
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
