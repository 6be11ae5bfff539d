"""Tasks: their state, progress, result or error; cancellation (an operator's own tasks, an
admin's any)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from sqlalchemy import func, select

from glasspane.api.deps import (
    CurrentUser,
    Services,
    audit_as,
    audited,
    operator,
    page,
    services,
    viewer,
)
from glasspane.api.schemas import AUTHENTICATED, Page, TaskView, errors
from glasspane.errors import NotFound
from glasspane.inventory import tasks
from glasspane.inventory.models import Task
from glasspane.inventory.users import role_allows

router = APIRouter(prefix="/tasks", tags=["tasks"], responses=AUTHENTICATED)
TaskId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # what every database's INTEGER holds


@router.get("", response_model=Page[TaskView])
def list_tasks(_: CurrentUser = Depends(viewer), found: Services = Depends(services),
               state: str | None = Query(None, max_length=16),
               limit: int = Query(50, ge=1, le=1000), offset: int = Query(0, ge=0, le=10_000_000)
               ) -> dict[str, Any]:
    query = select(Task).order_by(Task.id.desc())
    if state:
        query = query.where(Task.state == state)
    with found.database.session() as session:
        total = session.scalar(select(func.count()).select_from(query.order_by(None)
                                                                .subquery()))
        rows = session.scalars(query.limit(limit).offset(offset))
        return page(limit, offset, int(total or 0), [tasks.task_view(t) for t in rows])


@router.get("/{task_id}", response_model=TaskView, responses=errors(404))
def get_task(task_id: TaskId, _: CurrentUser = Depends(viewer),
             found: Services = Depends(services)) -> dict[str, Any]:
    with found.database.session() as session:
        task = session.get(Task, task_id)
        if task is None:
            raise NotFound(f"no task {task_id}")
        return tasks.task_view(task)


@router.post("/{task_id}/cancel", response_model=TaskView, responses=errors(404),
             dependencies=[audited("task.cancel", "task", "{task_id}")])
def cancel_task(task_id: TaskId, request: Request, user: CurrentUser = Depends(operator),
                found: Services = Depends(services)) -> dict[str, Any]:
    audit_as(request, "task.cancel", "task", str(task_id))
    by = None if role_allows(user.role, "admin") else user.name
    return tasks.request_cancel(found.database, task_id, by)
