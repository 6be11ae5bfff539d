"""Hosts: the listing and one host's view from the inventory, read here; registering,
forgetting and a host's live facts are operations of the catalogue (operations/hosts.py)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response
from pydantic import TypeAdapter
from sqlalchemy import select

from glasspane.api.deps import CurrentUser, Services, off_loop, page, services, viewer
from glasspane.api.operations import add_routes
from glasspane.api.results import HostListed, HostView
from glasspane.api.routers.common import (
    LIMIT,
    OFFSET,
    Limit,
    Offset,
    count_all,
    count_of,
    encoded,
    find_host,
    total_of,
)
from glasspane.api.schemas import AUTHENTICATED, Page, errors
from glasspane.inventory.models import Host, Vm
from glasspane.operations.catalogue import CATALOGUE
from glasspane.operations.hosts import host_view

router = APIRouter(tags=["hosts"], responses=AUTHENTICATED)


# What a listing reads of each host: its view's columns, not the ORM object.
HOST_COLUMNS = (Host.name, Host.uri, Host.driver, Host.state, Host.error, Host.info,
                Host.last_seen)
# The listing's statements, built once, the page bound (`params`).
HOSTS_PAGE = select(*HOST_COLUMNS, count_of(Vm.host_id, Host.id)).order_by(Host.name) \
    .limit(LIMIT).offset(OFFSET)
HOSTS_COUNT = count_all(select(Host.id))
HOST_PAGE = TypeAdapter(Page[HostListed])


@router.get("/hosts", response_model=Page[HostListed], response_model_exclude_unset=True)
async def list_hosts(user: CurrentUser = Depends(viewer), found: Services = Depends(services),
                     limit: int = Limit, offset: int = Offset) -> Response:
    params = {"limit": limit, "offset": offset}

    def read() -> Response:
        with found.database.reading() as connection:
            rows = connection.execute(HOSTS_PAGE, params).all()
            total = total_of(found, connection, HOSTS_COUNT, params, ("hosts",), offset, limit,
                             len(rows))
        return encoded(HOST_PAGE, page(limit, offset, total,
                                       [host_view(r, user.role, r[-1]) for r in rows]),
                       exclude_unset=True)
    return await off_loop(found, user, read)


@router.get("/hosts/{name}", response_model=HostView, response_model_exclude_unset=True,
            responses=errors(404))
def get_host(name: str, user: CurrentUser = Depends(viewer),
             found: Services = Depends(services)) -> dict[str, Any]:
    with found.database.session() as session:
        return host_view(find_host(session, name), user.role)


add_routes(router, [op for op in CATALOGUE.values() if op.name.startswith("host.")])
