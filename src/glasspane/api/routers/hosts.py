"""Hosts: the listing and one host's view from the inventory, read here; registering,
forgetting and a host's live facts are operations of the catalogue (operations/hosts.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from sqlalchemy import select

from glasspane.api.deps import CurrentUser, Services, off_loop, page, services, viewer
from glasspane.api.operations import add_routes
from glasspane.api.results import HostListed, HostView
from glasspane.api.routers.common import Limit, Offset, count_of, find_host, total_of
from glasspane.api.schemas import AUTHENTICATED, Page, errors
from glasspane.inventory.models import Host, Vm
from glasspane.operations.catalogue import CATALOGUE
from glasspane.operations.hosts import host_view

router = APIRouter(tags=["hosts"], responses=AUTHENTICATED)


# What a listing reads of each host: its view's columns, not the ORM object.
HOST_COLUMNS = (Host.name, Host.uri, Host.driver, Host.state, Host.error, Host.info,
                Host.last_seen)


@router.get("/hosts", response_model=Page[HostListed], response_model_exclude_unset=True)
async def list_hosts(user: CurrentUser = Depends(viewer), found: Services = Depends(services),
                     limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    def read() -> dict[str, Any]:
        with found.database.session() as session:
            rows = session.execute(select(*HOST_COLUMNS, count_of(Vm.host_id, Host.id))
                                   .order_by(Host.name).limit(limit).offset(offset)).all()
            total = total_of(found, session, select(Host.id), ("hosts",), offset, limit,
                             len(rows))
            return page(limit, offset, total, [host_view(r, user.role, r[-1]) for r in rows])
    return await off_loop(found, user, read)


@router.get("/hosts/{name}", response_model=HostView, response_model_exclude_unset=True,
            responses=errors(404))
def get_host(name: str, user: CurrentUser = Depends(viewer),
             found: Services = Depends(services)) -> dict[str, Any]:
    with found.database.session() as session:
        return host_view(find_host(session, name), user.role)


add_routes(router, [op for op in CATALOGUE.values() if op.name.startswith("host.")])
