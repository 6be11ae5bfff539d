"""Hosts, VMs, containers and templates as the inventory knows them: listing with filters and
paging (served from the database, fast however many there are), and one object at a time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select

from glasspane.api.deps import CurrentUser, Services, page, services, viewer
from glasspane.errors import NotFound
from glasspane.inventory.models import Container, Host, Template, Vm

router = APIRouter(tags=["inventory"])
Limit = Query(100, ge=1, le=1000)
Offset = Query(0, ge=0, le=10_000_000)


def host_view(host: Host, vm_count: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": host.name, "uri": host.uri, "driver": host.driver, "state": host.state,
        "error": host.error, "info": host.info,
        "last_seen": host.last_seen.isoformat() if host.last_seen else None}
    if vm_count is not None:
        view["vm_count"] = vm_count
    return view


def vm_view(vm: Vm, host_name: str, container_count: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"host": host_name, "name": vm.name, "uuid": vm.uuid,
            "power_state": vm.power_state, "addresses": vm.addresses,
            "template": vm.template, "labels": vm.labels,
            "containers_error": vm.containers_error,
            "updated_at": vm.updated_at.isoformat()}
    if container_count is not None:
        view["container_count"] = container_count
    return view


def container_view(c: Container, host_name: str, vm_name: str) -> dict[str, Any]:
    return {"host": host_name, "vm": vm_name, "name": c.name, "id": c.engine_id,
            "image": c.image, "state": c.state, "status": c.status, "ports": c.ports,
            "app": c.app, "created": c.created}


def _paged(session: Any, query: Any, limit: int, offset: int
           ) -> tuple[int, list[Any]]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.execute(query.limit(limit).offset(offset))
    return int(total or 0), [tuple(row) for row in rows]


@router.get("/hosts")
def list_hosts(_: CurrentUser = Depends(viewer), found: Services = Depends(services),
               limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    query = select(Host).order_by(Host.name)
    with found.database.session() as session:
        total, rows = _paged(session, query, limit, offset)
        counts = _counts(session, Vm.host_id, [h.id for (h,) in rows])
        return page(limit, offset, total, [host_view(h, counts.get(h.id, 0)) for (h,) in rows])


def _counts(session: Any, column: Any, ids: list[int]) -> dict[int, int]:
    """How many rows point at each of `ids` through `column`, for one page's worth of ids
    (counting for the page alone keeps a listing's cost flat however large the inventory)."""
    if not ids:
        return {}
    return {key: int(n) for key, n in session.execute(
        select(column, func.count()).where(column.in_(ids)).group_by(column))}


@router.get("/hosts/{name}")
def get_host(name: str, _: CurrentUser = Depends(viewer),
             found: Services = Depends(services)) -> dict[str, Any]:
    with found.database.session() as session:
        host = session.scalar(select(Host).where(Host.name == name))
        if host is None:
            raise NotFound(f"no host named {name!r}")
        return host_view(host)


@router.get("/vms")
def list_vms(_: CurrentUser = Depends(viewer), found: Services = Depends(services),
             host: str | None = Query(None, max_length=64),
             state: str | None = Query(None, max_length=16),
             q: str | None = Query(None, max_length=128, description="name contains"),
             limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    query = select(Vm, Host.name).join(Host).order_by(Host.name, Vm.name)
    if host:
        query = query.where(Host.name == host)
    if state:
        query = query.where(Vm.power_state == state)
    if q:
        query = query.where(Vm.name.contains(q, autoescape=True))
    with found.database.session() as session:
        total, rows = _paged(session, query, limit, offset)
        counts = _counts(session, Container.vm_id, [v.id for v, _ in rows])
        return page(limit, offset, total, [vm_view(v, h, counts.get(v.id, 0)) for v, h in rows])


def find_vm(session: Any, host: str, name: str) -> Vm:
    vm = session.scalar(select(Vm).join(Host).where(Host.name == host, Vm.name == name))
    if vm is None:
        raise NotFound(f"no VM named {name!r} on host {host}")
    return vm  # type: ignore[no-any-return]


@router.get("/vms/{host}/{name}")
def get_vm(host: str, name: str, _: CurrentUser = Depends(viewer),
           found: Services = Depends(services)) -> dict[str, Any]:
    with found.database.session() as session:
        vm = find_vm(session, host, name)
        view = vm_view(vm, host)
        view["containers"] = [container_view(c, host, name) for c in session.scalars(
            select(Container).where(Container.vm_id == vm.id).order_by(Container.name))]
        return view


@router.get("/containers")
def list_containers(_: CurrentUser = Depends(viewer), found: Services = Depends(services),
                    host: str | None = Query(None, max_length=64),
                    vm: str | None = Query(None, max_length=128),
                    state: str | None = Query(None, max_length=16),
                    q: str | None = Query(None, max_length=128, description="name contains"),
                    limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    query = select(Container, Host.name, Vm.name).join(Vm, Container.vm_id == Vm.id) \
        .join(Host, Vm.host_id == Host.id).order_by(Host.name, Vm.name, Container.name)
    if host:
        query = query.where(Host.name == host)
    if vm:
        query = query.where(Vm.name == vm)
    if state:
        query = query.where(Container.state == state)
    if q:
        query = query.where(Container.name.contains(q, autoescape=True))
    with found.database.session() as session:
        total, rows = _paged(session, query, limit, offset)
        return page(limit, offset, total, [container_view(c, h, v) for c, h, v in rows])


@router.get("/templates")
def list_templates(_: CurrentUser = Depends(viewer), found: Services = Depends(services),
                   host: str | None = Query(None, max_length=64),
                   limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    query = select(Template, Host.name).join(Host).order_by(Host.name, Template.name)
    if host:
        query = query.where(Host.name == host)
    with found.database.session() as session:
        total, rows = _paged(session, query, limit, offset)
        return page(limit, offset, total, [
            {"host": h, "name": t.name, "virtual_size": t.virtual_size,
             "allocation": t.allocation} for t, h in rows])
