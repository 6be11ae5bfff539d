"""What the resource routers share: paging, per-page counts, finding a VM, and turning a
request into a queued task (202) recorded in the audit log under the task's id."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select

from glasspane.api.deps import CurrentUser, Services, audit_as
from glasspane.errors import NotFound
from glasspane.inventory import tasks
from glasspane.inventory.models import Host, Vm

Limit = Query(100, ge=1, le=1000)
Offset = Query(0, ge=0, le=10_000_000)
NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class SpecContext(BaseModel):
    """A spec sent with its directory (`glasspane ... --server` packs it into the store)."""
    model_config = ConfigDict(extra="forbid")
    context: str = Field(min_length=1, max_length=128,
                         description="a stored tar archive of the spec's directory")
    spec: str = Field(min_length=1, max_length=255,
                      description="the spec's path inside the context")


def paged(session: Any, query: Any, limit: int, offset: int) -> tuple[int, list[Any]]:
    total = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    rows = session.execute(query.limit(limit).offset(offset))
    return int(total or 0), [tuple(row) for row in rows]


def paged_ids(found: Services, session: Any, ids: Any, order: Any, limit: int, offset: int,
              filters: tuple[Any, ...]) -> tuple[int, list[int]]:
    """The total and one page of the ids `ids` (a select of one table's id, filtered) in
    `order`: counted and paged on that table's indexes alone, joined to nothing, so a page
    deep in a large listing costs an index range, not a sorted join; the total is counted
    once per inventory generation (`filters` names the listing and its filters)."""
    totals = found.totals_of(found.generation.value)
    total = totals.get(filters)
    if total is None:
        total = int(session.scalar(select(func.count()).select_from(ids.subquery())) or 0)
        totals[filters] = total
    page_ids = list(session.scalars(ids.order_by(order).limit(limit).offset(offset)))
    return total, page_ids


def host_id_of(name: str) -> Any:
    return select(Host.id).where(Host.name == name).scalar_subquery()


def counts(session: Any, column: Any, ids: list[int]) -> dict[int, int]:
    """How many rows point at each of `ids` through `column`, for one page's worth of ids
    (counting for the page alone keeps a listing's cost flat however large the inventory)."""
    if not ids:
        return {}
    return {key: int(n) for key, n in session.execute(
        select(column, func.count()).where(column.in_(ids)).group_by(column))}


def find_vm(session: Any, host: str, name: str) -> Vm:
    vm = session.scalar(select(Vm).join(Host).where(Host.name == host, Vm.name == name))
    if vm is None:
        raise NotFound(f"no VM named {name!r} on host {host}")
    return vm  # type: ignore[no-any-return]


def find_host(session: Any, name: str) -> Host:
    host = session.scalar(select(Host).where(Host.name == name))
    if host is None:
        raise NotFound(f"no host named {name!r}")
    return host  # type: ignore[no-any-return]


def submit(request: Request, found: Services, user: CurrentUser, kind: str,
           object_type: str, object_name: str, params: dict[str, Any],
           cancellable: bool = False, action: str | None = None,
           pinned: bool = False) -> dict[str, Any]:
    """Queue task `kind` and return it (the route answers 202 with it); the audit log names
    it `action` (default: the kind).  A `pinned` task runs on this instance (it reads or
    writes this instance's image store)."""
    audit_as(request, action or kind, object_type, object_name)
    task = tasks.submit(found.database, kind, object_type, object_name, params, user.name,
                        cancellable, found.instance if pinned else None)
    request.state.task = task["id"]
    return task
