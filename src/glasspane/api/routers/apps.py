"""Apps: groups of containers described by one compose-style file.  The listing comes from
the inventory (each container remembers its app); deploying sends the app spec's directory
(its image archives included) to the image store and runs as a task, as removing does:
both are routes made from the operations catalogue (`glasspane.operations.apps`)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy import select

from glasspane.api.deps import (
    CurrentUser,
    Services,
    off_loop,
    services,
    viewer,
)
from glasspane.api.operations import add_routes
from glasspane.api.results import AppCheck, AppView
from glasspane.api.routers.common import SpecContext
from glasspane.api.routers.images import store_of
from glasspane.api.schemas import AUTHENTICATED, errors
from glasspane.inventory.models import Container, Host, Vm
from glasspane.inventory.parsing import in_parser_thread
from glasspane.operations import apps as _app_operations  # noqa: F401 - fills the catalogue
from glasspane.operations.catalogue import CATALOGUE

router = APIRouter(tags=["apps"], responses=AUTHENTICATED)


class AppContext(SpecContext):
    spec: str = Field(default="app.yaml", min_length=1, max_length=255)


@router.get("/apps", response_model=list[AppView])
async def list_apps(user: CurrentUser = Depends(viewer), found: Services = Depends(services),
              host: str | None = Query(None, max_length=64),
              vm: str | None = Query(None, max_length=128)) -> list[dict[str, Any]]:
    """Every app the inventory knows of, with its containers and their states."""
    query = select(Host.name, Vm.name, Container.app, Container.name, Container.state) \
        .join(Vm, Container.vm_id == Vm.id).join(Host, Vm.host_id == Host.id) \
        .where(Container.app.is_not(None), Container.app != "") \
        .order_by(Host.name, Vm.name, Container.app, Container.name)
    if host:
        query = query.where(Host.name == host)
    if vm:
        query = query.where(Vm.name == vm)

    def read() -> list[dict[str, Any]]:
        grouped: dict[tuple[str, str, str], list[dict[str, str]]] = defaultdict(list)
        with found.database.session() as session:
            for host_name, vm_name, app, name, state in session.execute(query):
                grouped[(host_name, vm_name, app or "")].append({"name": name, "state": state})
        return [{"host": h, "vm": v, "name": a, "containers": c}
                for (h, v, a), c in grouped.items()]
    return await off_loop(found, user, read)


add_routes(router, [op for op in CATALOGUE.values() if op.name.startswith("app.")])


@router.post("/apps/validate", response_model=AppCheck,
             responses=errors(404, 408, 413, 507))
async def validate_app(body: AppContext, _: CurrentUser = Depends(viewer),
                       found: Services = Depends(services)) -> dict[str, Any]:
    """Check the app spec in a stored context without deploying it."""
    from glasspane.containers.app import parse_app
    from glasspane.inventory.store_handlers import app_in_context

    def check() -> dict[str, Any]:
        with app_in_context(store_of(found), body.context, body.spec) as spec_path:
            parsed = parse_app(spec_path)
            return {"name": parsed.name, "services": [s.name for s in parsed.services]}
    return await in_parser_thread(check)
