"""Tasks: long actions (create a VM, stop a container) queued in the database, claimed by
exactly one glasspane instance (row locks with SKIP LOCKED on PostgreSQL; SQLite has one
writer anyway), run on a worker thread, with progress (0-100 and a message), a result or an
error, and cancellation where the action allows it.  Every change is also an event."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import String, or_, select, update

from glasspane.errors import GlasspaneError
from glasspane.inventory import audit
from glasspane.inventory.db import Database
from glasspane.inventory.events import publish
from glasspane.inventory.models import Task, utcnow

log = logging.getLogger("glasspane.tasks")
FINISHED = ("succeeded", "failed", "cancelled")


class Cancelled(Exception):
    """Raised inside a handler (by `TaskContext.check`) when the task was cancelled."""


@dataclass
class TaskContext:
    database: Database
    task_id: int
    params: dict[str, Any]
    user: str = ""                   # who submitted it
    _last_report: float = 0.0

    def progress(self, percent: int, message: str = "") -> None:
        """Report progress; written at most a few times a second, however often called."""
        now = time.monotonic()
        if now - self._last_report < 0.25 and percent < 100:
            return
        self._last_report = now
        percent = max(0, min(100, percent))
        with self.database.session() as session:
            task = session.get(Task, self.task_id)
            assert task is not None
            task.progress, task.message = percent, message
            publish(session, "task.progress", "task", str(task.id), progress=percent,
                    message=message, state=task.state)

    def check(self) -> None:
        """Stop here (raise Cancelled) if someone asked to cancel the task."""
        with self.database.session() as session:
            if session.scalar(select(Task.cancel_requested).where(Task.id == self.task_id)):
                raise Cancelled


Handler = Callable[[TaskContext], dict[str, Any] | None]
HANDLERS: dict[str, Handler] = {}


def handler(kind: str) -> Callable[[Handler], Handler]:
    def register(function: Handler) -> Handler:
        HANDLERS[kind] = function
        return function
    return register


OBJECT_NAME = cast(String, Task.__table__.c.object_name.type).length or 512


def task_view(task: Task) -> dict[str, Any]:
    return {"id": task.id, "kind": task.kind, "object_type": task.object_type,
            "object_name": task.object_name, "state": task.state, "progress": task.progress,
            "message": task.message, "result": task.result, "error": task.error,
            "cancellable": task.cancellable, "created_by": task.created_by,
            "created_at": task.created_at.isoformat(),
            "finished_at": task.finished_at.isoformat() if task.finished_at else None}


def submit(database: Database, kind: str, object_type: str, object_name: str,
           params: dict[str, Any], user: str, cancellable: bool = False,
           pinned_to: str | None = None) -> dict[str, Any]:
    """Queue a task; `pinned_to` an instance when only that one can run it (its inputs are
    on that instance's disk)."""
    if kind not in HANDLERS:
        raise ValueError(f"no handler for task kind {kind}")
    # A name put together from the request (host/VM/image) may be longer than the column:
    # cut, as the audit log's are, rather than failing the insert on PostgreSQL.
    object_name = object_name[:OBJECT_NAME]
    with database.session() as session:
        task = Task(kind=kind, object_type=object_type, object_name=object_name, params=params,
                    created_by=user, cancellable=cancellable, pinned_to=pinned_to)
        session.add(task)
        session.flush()
        publish(session, "task.created", "task", str(task.id), kind=kind,
                object_name=object_name, state="queued")
        return task_view(task)


def request_cancel(database: Database, task_id: int, by: str | None = None) -> dict[str, Any]:
    """Cancel the task (at once if it has not started, else at its next check); `by` a
    user who may cancel only their own tasks (None: anyone's, as an admin may)."""
    from glasspane.errors import Forbidden, NotFound, UsageError
    with database.session() as session:
        task = session.get(Task, task_id, with_for_update=True)
        if task is None:
            raise NotFound(f"no task {task_id}")
        if by is not None and task.created_by != by:
            raise Forbidden(f"task {task_id} is {task.created_by}'s: only they or an admin "
                            "may cancel it")
        if task.state in FINISHED:
            raise UsageError(f"task {task_id} has already {task.state}")
        if not task.cancellable:
            raise UsageError(f"task {task_id} ({task.kind}) cannot be cancelled")
        task.cancel_requested = True
        if task.state == "queued":  # never started: nothing to undo
            _finish(session, task, "cancelled", error="cancelled before it started")
        return task_view(task)


def _finish(session: Any, task: Task, state: str, result: dict[str, Any] | None = None,
            error: str | None = None) -> None:
    task.state, task.finished_at = state, utcnow()
    task.result, task.error = result, error
    if state == "succeeded":
        task.progress = 100
    publish(session, "task.finished", "task", str(task.id), state=state, error=error,
            kind=task.kind, object_name=task.object_name)


class Worker:
    """Claims queued tasks and runs them, `threads` at a time."""

    def __init__(self, database: Database, instance: str, threads: int = 4,
                 poll: float = 0.5) -> None:
        self.database, self.instance, self.poll = database, instance, poll
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, daemon=True,
                                          name=f"glasspane-task-{i}") for i in range(threads)]

    def start(self) -> None:
        self._fail_orphans()
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)

    def _fail_orphans(self) -> None:
        """Tasks this instance was running when it stopped cannot finish now: say so."""
        with self.database.session() as session:
            for task in session.scalars(select(Task).where(Task.state == "running",
                                                           Task.claimed_by == self.instance)):
                _finish(session, task, "failed",
                        error="glasspane restarted while the task was running")

    def claim(self) -> tuple[int, str, dict[str, Any], str] | None:
        with self.database.session() as session:
            task = session.scalar(
                select(Task).where(Task.state == "queued",
                                   or_(Task.pinned_to.is_(None),
                                       Task.pinned_to == self.instance))
                .order_by(Task.id).limit(1).with_for_update(skip_locked=True))
            if task is None:
                return None
            # The state check makes the claim safe where FOR UPDATE is a no-op (SQLite).
            claimed = session.execute(
                update(Task).where(Task.id == task.id, Task.state == "queued")
                .values(state="running", claimed_by=self.instance, started_at=utcnow()))
            if getattr(claimed, "rowcount", 0) != 1:
                return None
            publish(session, "task.progress", "task", str(task.id), progress=0, message="",
                    state="running")
            return task.id, task.kind, dict(task.params), task.created_by

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                claimed = self.claim()
            except Exception:  # the database went away: try again shortly
                log.exception("claiming a task")
                claimed = None
            if claimed is None:
                self._stop.wait(self.poll)
                continue
            self.run(*claimed)

    def run(self, task_id: int, kind: str, params: dict[str, Any], user: str = "") -> None:
        context = TaskContext(self.database, task_id, params, user)
        try:
            result = HANDLERS[kind](context)
            state, error = "succeeded", None
        except Cancelled:
            result, state, error = None, "cancelled", "cancelled"
        except GlasspaneError as exc:
            result, state, error = None, "failed", str(exc)
        except Exception as exc:
            # Every user may read a task's error, and an unexpected exception's text names the
            # server's files (an OSError's path) or worse: the text goes to the server's log.
            log.exception("task %s (%s)", task_id, kind)
            result, state, error = None, "failed", (
                f"internal error ({type(exc).__name__}); the server's log has the details "
                f"under task {task_id}")
        with self.database.session() as session:
            task = session.get(Task, task_id)
            assert task is not None
            _finish(session, task, state, result, error)
            # The request was audited as accepted; how it ended is audited here.
            audit.record(session, task.created_by, task.kind, task.object_type,
                         task.object_name, state, 200 if state == "succeeded" else 500,
                         f"task {task_id}" + (f": {error}" if error else ""))
