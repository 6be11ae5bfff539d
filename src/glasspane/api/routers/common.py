"""What the resource routers share: paging, per-page counts, finding a VM, and turning a
request into a queued task (202) recorded in the audit log under the task's id."""

from __future__ import annotations

from typing import Any

from fastapi import Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import Integer, bindparam, func, select

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


# Bound in a listing's statements; their values come with each execution (`params`).
LIMIT, OFFSET = bindparam("limit", type_=Integer), bindparam("offset", type_=Integer)
LIKE_ESCAPE = "/"


def contains(column: Any, name: str) -> Any:
    """`column` contains the bound value `name` (given by `like_pattern`), whatever `%` or `_`
    it holds: the SQL of `column.contains(value, autoescape=True)`, with the value bound."""
    return column.contains(bindparam(name, type_=column.type), escape=LIKE_ESCAPE)


def like_pattern(text: str) -> str:
    """`text` escaped for `contains` (SQLAlchemy's autoescape, done on the value)."""
    return text.replace(LIKE_ESCAPE, 2 * LIKE_ESCAPE).replace("%", LIKE_ESCAPE + "%") \
        .replace("_", LIKE_ESCAPE + "_")


def page_of(ids: Any, order: Any) -> Any:
    """One page of the ids `ids` (a select of one table's id, filtered) in `order`, from the
    bound `offset`, at most the bound `limit` of them, as a subquery to select that page's
    rows with (`Table.id.in_(...)`).  The page is cut on that table's indexes alone, joined
    to nothing, so a page deep in a large listing costs an index range, not a sorted join;
    its rows, their joins and their counts then come in one statement (each statement costs
    more in the ORM than in the database)."""
    return ids.order_by(order).limit(LIMIT).offset(OFFSET).scalar_subquery()


def count_all(ids: Any) -> Any:
    """The statement counting the rows `ids` (a select of one table's id) finds."""
    return select(func.count()).select_from(ids.subquery())


def total_of(found: Services, connection: Any, count: Any, params: dict[str, Any],
             filters: tuple[Any, ...], offset: int = 0, limit: int = 0,
             shown: int = 0) -> int:
    """How many rows `count` (a `count_all` statement, with `params`) counts, counted once
    per inventory generation (`filters` names the listing and its filters): a total does
    not depend on the page, so paging through a large listing counts it once.  A page of
    `limit` from `offset` that showed `shown` rows, fewer than `limit` but some (or none
    from the start), was the listing's end: that is the total, with nothing to count (the
    first sight of a host's VMs, a VM's containers or a search, most often)."""
    totals = found.totals_of(found.generation.value)
    total = totals.get(filters)
    if total is None:
        if shown < limit and (shown or not offset):
            total = offset + shown
        else:
            total = int(connection.execute(count, params).scalar() or 0)
        totals[filters] = total
    return total


def host_id_of(name: str) -> Any:
    """The id of the host named by the bound parameter `name`, as a subquery."""
    return select(Host.id).where(Host.name == bindparam(name, type_=Host.name.type)) \
        .scalar_subquery()


def count_of(column: Any, key: Any) -> Any:
    """How many rows point at each row through `column` (`key`: the row's id), as a column
    of the statement that selects the rows: counted for the page's rows alone, which keeps a
    listing's cost flat however large the inventory."""
    return select(func.count()).where(column == key).correlate(key.table).scalar_subquery()


def encoded(model: TypeAdapter[Any], content: Any, *, exclude_unset: bool = False
            ) -> Response:
    """`content` validated against the route's response model (`model`) and encoded, as
    FastAPI does with what a route returns (the same calls, so the same bytes), but where
    this is called: in a listing's thread, not on the event loop, where validating a page
    of rows held every other request and live event stream up for a millisecond."""
    value = model.validate_python(content, from_attributes=True)
    return Response(model.dump_json(value, by_alias=True, exclude_unset=exclude_unset),
                    media_type="application/json")


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
