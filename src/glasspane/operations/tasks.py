"""Task operations run by the worker: one generic handler per operation, which validates the
stored payload again with the operation's command model before running it (a payload that
does not validate, stored by an older release or written by hand, fails the task saying
which fields are wrong, never with what they held)."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import ValidationError

from glasspane.enums import Role
from glasspane.errors import NotFound, UsageError
from glasspane.inventory.tasks import HANDLERS, TaskContext, handler
from glasspane.operations.catalogue import CATALOGUE, Caller, Context, Operation


def problems(exc: ValidationError) -> str:
    """The fields a validation refused and why, without the values (they may be secrets)."""
    return "; ".join(f"{'.'.join(str(p) for p in error['loc']) or 'payload'}: {error['msg']}"
                     for error in exc.errors(include_url=False, include_input=False))


def caller_of(context: TaskContext) -> Caller:
    """Who submitted the task, with their role as it is now (a viewer once removed)."""
    from glasspane.inventory.users import get_user
    with context.database.session() as session:
        try:
            role = Role(get_user(session, context.user).role)
        except NotFound:
            role = Role.VIEWER
    return Caller(context.user, role)


def run(op: Operation[Any, Any], context: TaskContext) -> dict[str, Any]:
    try:
        command = op.parse(context.params)
    except ValidationError as exc:
        # No cause: pydantic's errors carry the refused values (extra_vars...).
        raise UsageError(f"task {context.task_id} ({op.name}): its stored payload is not a "
                         f"valid {op.command.__name__}: {problems(exc)}",
                         hint="submit the operation again") from None
    from glasspane.inventory.handlers import current_settings
    assert op.handler is not None  # only operations with one are registered
    result = op.handler(Context(current_settings(), caller_of(context), context.database,
                                context.progress, context), command)
    dumped: dict[str, Any] = op.result.model_validate(result).model_dump(mode="json")
    return dumped


def register_tasks() -> None:
    """A task handler for every task operation of the catalogue (again: a no-op)."""
    for name, op in CATALOGUE.items():
        if op.task and op.handler is not None and name not in HANDLERS:
            handler(name)(functools.partial(run, op))
