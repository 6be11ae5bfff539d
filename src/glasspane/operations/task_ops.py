"""The operations on the server's tasks, each written once: the listing, one task, and
asking one to stop (an operator's own tasks, an admin's any).  (The task runner is
`operations.tasks`.)  Tasks live on a server: the CLI asks for --server before these."""

from __future__ import annotations

from pydantic import Field
from sqlalchemy import func, select

from glasspane.api.schemas import Page, TaskView
from glasspane.enums import Role
from glasspane.errors import NotFound
from glasspane.operations.catalogue import Command, Context, operation

TASK = {"object_type": "task", "target_name": "{task_id}", "errors": (404,)}


class ListTasks(Command):
    state: str | None = Field(default=None, max_length=16)
    limit: int = Field(default=50, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=10_000_000)


@operation("task.list", "GET", "/tasks", ListTasks, Page[TaskView], role=Role.VIEWER,
           object_type="task")
def list_tasks(context: Context, command: ListTasks) -> Page[TaskView]:
    """Recent tasks, newest first."""
    from glasspane.inventory.models import Task
    from glasspane.inventory.tasks import task_view
    query = select(Task).order_by(Task.id.desc())
    if command.state:
        query = query.where(Task.state == command.state)
    with context.inventory().session() as session:
        total = session.scalar(select(func.count()).select_from(query.order_by(None)
                                                                .subquery()))
        rows = session.scalars(query.limit(command.limit).offset(command.offset))
        return Page[TaskView](total=int(total or 0), limit=command.limit,
                              offset=command.offset,
                              items=[TaskView.model_validate(task_view(t)) for t in rows])


class OneTask(Command):
    task_id: int = Field(ge=1, le=2**31 - 1)  # what every database's INTEGER holds


@operation("task.show", "GET", "/tasks/{task_id}", OneTask, TaskView, role=Role.VIEWER, **TASK)
def show(context: Context, command: OneTask) -> TaskView:
    """Everything about one task: its state, progress, result or error."""
    from glasspane.inventory.models import Task
    from glasspane.inventory.tasks import task_view
    with context.inventory().session() as session:
        task = session.get(Task, command.task_id)
        if task is None:
            raise NotFound(f"no task {command.task_id}")
        return TaskView.model_validate(task_view(task))


@operation("task.cancel", "POST", "/tasks/{task_id}/cancel", OneTask, TaskView, **TASK)
def cancel(context: Context, command: OneTask) -> TaskView:
    """Ask a task to stop (where its action allows): an operator's own, an admin's any."""
    from glasspane.inventory.tasks import request_cancel
    by = None if context.caller.role.allows(Role.ADMIN) else context.caller.name
    return TaskView.model_validate(request_cancel(context.inventory(), command.task_id, by))
