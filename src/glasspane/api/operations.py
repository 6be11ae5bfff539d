"""The catalogue's operations as API routes: each gets its path and method, its role's
dependency, its audit name (set before anything else runs, so refusals are recorded under
it), its target found (404) and its state checked (409), its command built from the path
and the body (422), its request-time checks, and then either a queued task (202 with the
task, the command's JSON as the task's payload) or the handler's typed result."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from glasspane.api.deps import CurrentUser, Services, admin, audit_as, operator, services, viewer
from glasspane.api.routers.common import submit
from glasspane.api.schemas import AUTHENTICATED, REACHES_HOST, TaskRef, errors
from glasspane.enums import Role
from glasspane.operations.catalogue import Admission, Caller, Context, Operation

ROLE_DEPENDENCY = {Role.VIEWER: viewer, Role.OPERATOR: operator, Role.ADMIN: admin}


_bodies: dict[tuple[type[BaseModel], tuple[str, ...]], type[BaseModel] | None] = {}


def body_model(command: type[BaseModel], path_params: tuple[str, ...]
               ) -> type[BaseModel] | None:
    """The part of `command` that comes in the body: the command itself when the path gives
    none of its fields (its validators then apply as the body is read), else its other
    fields (None: nothing left)."""
    if not path_params:
        return command
    key = (command, path_params)
    if key not in _bodies:  # one model however many operations share the command
        _bodies[key] = _without(command, path_params)
    return _bodies[key]


def _without(command: type[BaseModel], path_params: tuple[str, ...]) -> type[BaseModel] | None:
    fields: dict[str, Any] = {name: (info.annotation, info)
                              for name, info in command.model_fields.items()
                              if name not in path_params}
    if not fields:
        return None
    made: type[BaseModel] = create_model(f"{command.__name__}Body",
                                         __config__=ConfigDict(extra="forbid"), **fields)
    return made


def audit_name(op: Operation[Any, Any]) -> Any:
    """A dependency naming the route's action for the audit log first of all."""
    async def mark(request: Request) -> None:
        try:
            name = op.target_name.format(**request.path_params)
        except (KeyError, IndexError):
            name = ""
        audit_as(request, op.action, op.object_type, name)
    return Depends(mark)


def perform(op: Operation[Any, Any], request: Request, user: CurrentUser, found: Services,
            body: BaseModel | None, params: Mapping[str, str]) -> Any:
    target = None
    if op.resolve is not None:
        # Found first: a made-up VM is a 404 whatever its name looks like.
        with found.database.session() as session:
            target = op.resolve(session, params)
        op.check_state(target)
    try:
        command = op.parse({**params, **(body.model_dump() if body is not None else {})})
    except ValidationError as exc:
        # No cause: pydantic's errors carry the refused values.
        raise RequestValidationError(exc.errors(include_url=False)) from None
    object_name = target.name if target is not None else op.object_name_of(command)
    audit_as(request, op.action, op.object_type, object_name,
             op.audit_detail(command) if op.audit_detail else "")
    caller = Caller(user.name, Role(user.role))
    if op.admit is not None:
        op.admit(Admission(found.settings, found.database, caller), command)
    if op.task:
        return submit(request, found, user, op.name, op.object_type, object_name,
                      command.model_dump(mode="json"), cancellable=op.cancellable,
                      pinned=op.pinned)
    assert op.handler is not None  # a generated route has one (Operation checks)
    result = op.handler(Context(found.settings, caller, found.database), command)
    if op.notify is not None:
        op.notify(found)
    return result


def outside_body(op: Operation[Any, Any]) -> tuple[str, ...]:
    """The command's fields that come in the path or the query string."""
    return op.path_params + op.query


def body_of(op: Operation[Any, Any]) -> type[BaseModel] | None:
    """The model of its body (a GET has none)."""
    return None if op.method == "GET" else body_model(op.command, outside_body(op))


def parameter(op: Operation[Any, Any], name: str) -> inspect.Parameter:
    """A path or query parameter typed and bounded as its command field is (FastAPI checks
    it and the OpenAPI document describes it; the command checks it again)."""
    info = op.command.model_fields[name]
    where = Path if name in op.path_params else Query
    parts = (info.annotation, *info.metadata, where(description=info.description))
    annotation: Any = Annotated[parts]  # Annotated[type, *constraints, Path()]
    default = inspect.Parameter.empty if info.is_required() else info.get_default(
        call_default_factory=True)
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation,
                             default=default)


def endpoint_for(op: Operation[Any, Any]) -> Any:
    body = body_of(op)

    def endpoint(request: Request, user: CurrentUser, found: Services,
                 body: BaseModel | None = None, **params: str) -> Any:
        return perform(op, request, user, found, body, params)

    keyword = inspect.Parameter.KEYWORD_ONLY
    parameters = [inspect.Parameter("request", keyword, annotation=Request),
                  *(parameter(op, name) for name in outside_body(op))]
    if body is not None:
        optional = all(not info.is_required() for info in body.model_fields.values())
        parameters.append(inspect.Parameter(
            "body", keyword, annotation=body | None if optional else body,
            default=None if optional else inspect.Parameter.empty))
    parameters += [
        inspect.Parameter("user", keyword, annotation=CurrentUser,
                          default=Depends(ROLE_DEPENDENCY[op.role])),
        inspect.Parameter("found", keyword, annotation=Services, default=Depends(services))]
    endpoint.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    endpoint.__name__ = op.name.replace(".", "_")
    endpoint.__doc__ = op.summary
    return endpoint


def error_statuses(op: Operation[Any, Any]) -> list[int]:
    """The errors the route may answer beyond any authenticated route's: a target not found
    or in the wrong state (and the like from request-time checks), a body too slow or big."""
    codes = [404, 409] if op.resolve is not None or op.admit is not None else []
    if body_of(op) is not None:
        codes += [408, 413]
    return sorted(set(codes) | set(op.errors))


def add_routes(router: APIRouter, ops: Iterable[Operation[Any, Any]]) -> None:
    for op in ops:
        if not op.routed:
            continue  # its route is written by hand
        router.add_api_route(
            op.path, endpoint_for(op), methods=[op.method],
            status_code=202 if op.task else op.status or 200,
            response_model=TaskRef if op.task else op.result,
            # An operation answered at once reaches a host (or a VM in it) while asked:
            # what it looks for there may be gone (404) or busy (409).
            responses={**AUTHENTICATED, **errors(*error_statuses(op)),
                       **({} if op.task else REACHES_HOST)},
            dependencies=[audit_name(op)], name=op.name, operation_id=op.name,
            summary=op.summary.split("\n\n")[0] or op.name, description=op.summary)
