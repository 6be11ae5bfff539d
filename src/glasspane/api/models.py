"""Response models the routers share: a page of a listing and a queued task."""

from __future__ import annotations

from typing import Any, Generic, TypeVar

from pydantic import BaseModel

from glasspane.enums import TaskState

T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    total: int
    limit: int
    offset: int
    items: list[T]


class TaskView(BaseModel):
    """A task as the API shows it (what an operation that runs as a task answers, with
    202: follow it at /tasks/{id})."""

    id: int
    kind: str
    object_type: str
    object_name: str
    state: TaskState
    progress: int
    message: str | None
    result: dict[str, Any] | None
    error: str | None
    cancellable: bool
    created_by: str
    created_at: str
    finished_at: str | None
