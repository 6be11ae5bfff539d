"""What every router's answers share: the error body (what the app's exception handler, the
middlewares and FastAPI's validation send), the `responses=` table of error statuses, the
paged envelope, and a task as a 202 answers it (`TaskRef`) and as /tasks shows it
(`TaskView`).  A route's `response_model` both documents its answer and filters it: a key
no model names never leaves the server."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, BeforeValidator, Field

from glasspane.enums import ContainerState, PowerState, TaskState

T = TypeVar("T")
E = TypeVar("E", bound=StrEnum)


class ErrorBody(BaseModel):
    """Every refusal: the project's errors, the role and token checks, the body limits."""

    detail: str = Field(description="what is wrong, naming the object, and what to do")


class ValidationIssue(BaseModel):
    """One problem FastAPI found in the request (its own shape: extra keys may follow)."""

    loc: list[str | int]
    msg: str
    type: str


class InvalidBody(BaseModel):
    """422: the request does not fit its schema (a list of problems), or the named image
    cannot be used (one message)."""

    detail: str | list[ValidationIssue]


ERRORS: dict[int, tuple[type[BaseModel], str]] = {
    400: (ErrorBody, "The request is wrong (a bad name or option, a NUL character)"),
    401: (ErrorBody, "No token, or an invalid or expired one"),
    403: (ErrorBody, "The caller's role does not allow it, or the object is another "
                     "user's, or a cookie-authenticated change lacks the X-Glasspane header"),
    404: (ErrorBody, "The named object does not exist"),
    408: (ErrorBody, "The request body stopped arriving"),
    409: (ErrorBody, "The object's state does not allow it (the message names the state "
                     "needed), or an output exists"),
    413: (ErrorBody, "The request body is too large"),
    422: (InvalidBody, "The request does not fit its schema, or the image cannot be used"),
    429: (ErrorBody, "Too many attempts or open streams: try again later"),
    502: (ErrorBody, "The host, the VM's engine or a program failed"),
    503: (ErrorBody, "The host cannot be reached, or the server is busy (Retry-After)"),
    507: (ErrorBody, "It would fill the server's disk"),
}


def errors(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entries for these error statuses, each with its body's model."""
    return {code: {"model": ERRORS[code][0], "description": ERRORS[code][1]}
            for code in codes}


# What any authenticated route can answer before it runs: a NUL in the request (400), no or
# a bad token (401), too low a role or a cookie change without the CSRF header (403), and
# parameters that do not fit (422).
AUTHENTICATED = errors(400, 401, 403, 422)
# ... and a route that reaches a hypervisor host or a VM's engine.
REACHES_HOST = errors(404, 409, 502, 503)


class Page(BaseModel, Generic[T]):
    """One page of a listing: `items` from `offset`, at most `limit`, of `total`."""

    total: int = Field(ge=0)
    limit: int = Field(ge=1)
    offset: int = Field(ge=0)
    items: list[T]


def known(enum: type[E], aliases: dict[str, E] | None = None) -> Callable[[Any], Any]:
    """A validator taking a value a host or a guest reported (a container's state comes from
    the guest's engine, unchecked) as `enum`: a word outside it (and its `aliases`) becomes
    its UNKNOWN member, rather than failing the whole listing with a 500."""
    def check(value: Any) -> Any:
        if aliases and value in aliases:
            return aliases[value]
        try:
            return enum(value)
        except ValueError:
            return enum["UNKNOWN"]
    return check


# Podman's own words for the states Docker's API names otherwise (older Podman passes them
# through its compatible API).
PODMAN_STATES = {"stopped": ContainerState.EXITED, "configured": ContainerState.CREATED,
                 "initialized": ContainerState.CREATED}
ReportedPowerState = Annotated[PowerState, BeforeValidator(known(PowerState))]
ReportedContainerState = Annotated[ContainerState,
                                   BeforeValidator(known(ContainerState, PODMAN_STATES))]


def _stamp(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


Timestamp = Annotated[str, BeforeValidator(_stamp),
                      Field(description="ISO 8601, UTC")]


class TaskRef(BaseModel):
    """A task just queued (202): follow it at /tasks/{id} or in the event stream."""

    id: int
    kind: str = Field(description="what it does: vm.create, image.convert, ...")
    object_type: str
    object_name: str
    state: TaskState
    progress: int = Field(ge=0, le=100)
    message: str = ""
    cancellable: bool
    created_by: str
    created_at: Timestamp


class TaskView(TaskRef):
    """A task, running or done, with its result (its kind's own fields) or error."""

    result: dict[str, Any] | None = None
    error: str | None = None
    finished_at: Timestamp | None = None
