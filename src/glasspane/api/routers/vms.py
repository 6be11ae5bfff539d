"""VMs: listing and details from the inventory (with the operations the caller may run on
each now), what the hypervisor says of one, and its serial console.  Every operation that
changes a VM (create, power, snapshots, resources, export, exec, configure) is a route made
from the operations catalogue (`glasspane.operations.vms`)."""

from __future__ import annotations

import dataclasses
from functools import cache, lru_cache
from typing import Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, TypeAdapter
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
from glasspane.api.results import ContainerView
from glasspane.api.routers.common import (
    Limit,
    Offset,
    contains,
    count_all,
    count_of,
    encoded,
    find_vm,
    host_id_of,
    like_pattern,
    page_of,
    total_of,
)
from glasspane.api.routers.containers import container_view
from glasspane.api.schemas import AUTHENTICATED, REACHES_HOST, Page, errors
from glasspane.enums import PowerState, VmAction
from glasspane.errors import NotFound
from glasspane.inventory.models import Container, Host, Vm
from glasspane.operations import hardware as _hardware_operations  # noqa: F401 - fills the catalogue
from glasspane.operations.catalogue import CATALOGUE
from glasspane.operations.vms import vm_actions
from glasspane.vms import service as vms

router = APIRouter(tags=["vms"], responses=AUTHENTICATED)


class VmView(BaseModel):
    host: str
    name: str
    uuid: str
    power_state: PowerState
    addresses: list[str]
    template: str | None
    labels: dict[str, str]
    containers_error: str | None
    updated_at: str
    actions: list[str]          # the operations the caller may run on it now ("vm.start")
    container_count: int | None = None


VM_PAGE = TypeAdapter(Page[VmView])


class VmDetail(VmView):
    containers: list[ContainerView]


class VmFacts(BaseModel):
    name: str
    host: str
    power_state: PowerState
    addresses: list[str]
    snapshots: list[str]
    disk: str | None


# What a listing reads of each VM: its view's columns, not the ORM object (building an
# entity per row, with its identity and change tracking, cost more than the row's SQL).
VM_COLUMNS = (Vm.name, Vm.uuid, Vm.power_state, Vm.addresses, Vm.template, Vm.labels,
              Vm.containers_error, Vm.updated_at)


@lru_cache(maxsize=256)
def _actions(role: str, state: str | None, operations: int) -> tuple[str, ...]:
    """`vm_actions`, remembered: it depends on the role, the state and the catalogue alone
    (`operations`, the catalogue's size, keys it), and asking the catalogue for each VM of
    each page was a sixth of a page's first reading."""
    return tuple(vm_actions(role, state))


def vm_view(vm: Any, host_name: str, role: str, container_count: int | None = None
            ) -> dict[str, Any]:
    """A VM's view from `vm`: its inventory row, or a row of `VM_COLUMNS`."""
    view: dict[str, Any] = {"host": host_name, "name": vm.name, "uuid": vm.uuid,
                            "power_state": vm.power_state, "addresses": vm.addresses,
                            "template": vm.template, "labels": vm.labels,
                            "containers_error": vm.containers_error,
                            "updated_at": vm.updated_at.isoformat(),
                            "actions": list(_actions(role, vm.power_state,
                                                     len(CATALOGUE)))}
    if container_count is not None:
        view["container_count"] = container_count
    return view


@cache
def _listing(host: bool, state: bool, q: bool) -> tuple[Any, Any]:
    """The VM listing's statements (its page of rows, its count) for the filters given,
    their values bound: built once per shape, not per request (building a statement, its
    coercions and its cache key, was a tenth of a page's first reading)."""
    ids = select(Vm.id)
    if host:
        ids = ids.where(Vm.host_id == host_id_of("host"))
    if state:
        ids = ids.where(Vm.power_state == bindparam("state", type_=Vm.power_state.type))
    if q:
        ids = ids.where(contains(Vm.name, "q"))
    rows = select(*VM_COLUMNS, Host.name.label("host_name"),
                  count_of(Container.vm_id, Vm.id).label("container_count")).join(Host) \
        .where(Vm.id.in_(page_of(ids, Vm.sort_key))).order_by(Vm.sort_key)
    return rows, count_all(ids)


@router.get("/vms", response_model=Page[VmView], response_model_exclude_unset=True)
async def list_vms(user: CurrentUser = Depends(viewer), found: Services = Depends(services),
             host: str | None = Query(None, max_length=64),
             state: str | None = Query(None, max_length=16),
             q: str | None = Query(None, max_length=128, description="name contains"),
             limit: int = Limit, offset: int = Offset) -> Response:
    rows_of, count = _listing(bool(host), bool(state), bool(q))
    params = {"host": host, "state": state, "q": like_pattern(q) if q else None,
              "limit": limit, "offset": offset}

    def read() -> Response:
        with found.database.reading() as connection:
            rows = connection.execute(rows_of, params).all()
            total = total_of(found, connection, count, params, ("vms", host, state, q), offset,
                             limit, len(rows))
        return encoded(VM_PAGE, page(limit, offset, total, [
            vm_view(r, r.host_name, user.role, r.container_count) for r in rows]),
            exclude_unset=True)
    return await off_loop(found, user, read)


@router.get("/vms/{host}/{name}", response_model=VmDetail, response_model_exclude_unset=True,
            responses=errors(404))
def get_vm(host: str, name: str, user: CurrentUser = Depends(viewer),
           found: Services = Depends(services)) -> dict[str, Any]:
    with found.database.session() as session:
        vm = find_vm(session, host, name)
        view = vm_view(vm, host, user.role)
        view["containers"] = [container_view(c, host, name, user.role) for c in session.scalars(
            select(Container).where(Container.vm_id == vm.id).order_by(Container.name))]
        return view


@router.get("/vms/{host}/{name}/facts", response_model=VmFacts, responses=REACHES_HOST)
async def vm_facts(host: str, name: str, _: CurrentUser = Depends(viewer),
                   found: Services = Depends(services)) -> dict[str, Any]:
    """What the hypervisor says of the VM now: power state, addresses, disk, snapshots."""
    details = await run_in_threadpool(vms.vm_info, found.settings, name, host, False)
    facts = dataclasses.asdict(details)
    facts.pop("console_log", None)  # /console has it, as long as asked for
    return facts


# Its own text answer; a response class with no media type keeps the error bodies documented
# as the JSON they are.
@router.get("/vms/{host}/{name}/console", response_class=Response,
            responses={200: {"description": "The serial console's last lines", "content": {
                "text/plain": {"schema": {"type": "string"}}}}, **REACHES_HOST})
async def vm_console(host: str, name: str, _: CurrentUser = Depends(viewer),
                     found: Services = Depends(services),
                     lines: int = Query(100, ge=1, le=5000)) -> PlainTextResponse:
    return PlainTextResponse(await run_in_threadpool(vms.console_log, found.settings, name,
                                                     host, lines))


add_routes(router, [op for op in CATALOGUE.values() if op.name.startswith("vm.")])


@router.post("/vms/{host}/{name}/actions/{action}", include_in_schema=False,
             dependencies=[audited("vm.{action}", "vm", "{host}/{name}")])
def unknown_vm_action(host: str, name: str, action: str, request: Request,
                      _: CurrentUser = Depends(operator)) -> None:
    """Any other action: a 404 naming the ones there are (after the routes of those)."""
    del host, name, request
    raise NotFound(f"no VM action {action!r} (one of {', '.join(VmAction)})")
