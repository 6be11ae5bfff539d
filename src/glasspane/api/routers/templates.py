"""Templates: listing from the inventory; importing a stored disk image as a template,
building one from a spec (a build context sent to the image store), making the Debian one,
and removing one, as tasks; checking a spec without building it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy import select

from glasspane.api.deps import (
    CurrentUser,
    Services,
    off_loop,
    page,
    services,
    viewer,
)
from glasspane.api.operations import add_routes
from glasspane.api.results import SpecCheck, TemplateView
from glasspane.api.routers.common import (
    Limit,
    Offset,
    SpecContext,
    find_host,
    paged,
)
from glasspane.api.routers.images import store_of
from glasspane.api.schemas import AUTHENTICATED, Page, errors
from glasspane.inventory.models import Host, Template
from glasspane.inventory.parsing import in_parser_thread
from glasspane.operations import templates as _template_operations  # noqa: F401
from glasspane.operations.catalogue import CATALOGUE

router = APIRouter(tags=["templates"], responses=AUTHENTICATED)


class Validate(SpecContext):
    spec: str = Field(default="template.yaml", min_length=1, max_length=255)
    variables: dict[str, str] = Field(default_factory=dict, max_length=256)


@router.get("/templates", response_model=Page[TemplateView])
async def list_templates(user: CurrentUser = Depends(viewer), found: Services = Depends(services),
                   host: str | None = Query(None, max_length=64),
                   limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    query = select(Template, Host.name).join(Host).order_by(Host.name, Template.name)
    if host:
        query = query.where(Host.name == host)

    def read() -> dict[str, Any]:
        with found.database.session() as session:
            total, rows = paged(session, query, limit, offset)
            return page(limit, offset, total, [
                {"host": h, "name": t.name, "virtual_size": t.virtual_size,
                 "allocation": t.allocation} for t, h in rows])
    return await off_loop(found, user, read)


def _known_host(found: Services, name: str) -> None:
    with found.database.session() as session:
        find_host(session, name)


@router.post("/templates/validate", response_model=SpecCheck,
             responses=errors(404, 408, 413, 507))
async def validate_spec(body: Validate, _: CurrentUser = Depends(viewer),
                        found: Services = Depends(services)) -> dict[str, Any]:
    """Check the spec in a stored build context without building it."""
    from glasspane.inventory.store_handlers import template_in_context

    def check() -> dict[str, Any]:
        with template_in_context(store_of(found), body.context, body.spec,
                                 body.variables) as (parsed, _):
            return {"name": parsed.name, "source": parsed.source.describe(),
                    "provisioners": len(parsed.provisioners),
                    "outputs": [o.filename(parsed.name) for o in parsed.outputs]}
    return await in_parser_thread(check)


add_routes(router, [op for op in CATALOGUE.values() if op.name.startswith("template.")])
