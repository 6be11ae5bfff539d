"""The operations catalogue: each thing a user can do to an object, written once.

An `Operation` declares its name (also its audit action and, when it runs as a task, the
task's kind), its HTTP method and path, a typed command (what the caller sends, bounded and
closed to unknown fields) and a typed result, the role it needs, how its target is found
(None where it has no existing target: a VM being created), the states the target must be
in, whether it runs as a task, and the one function that does it.  The API's routes, the
task handlers, the task payloads and the actions each object allows are all made from it
(`glasspane.api.operations`, `glasspane.operations.tasks`); adding an operation is adding
one entry here, in the module of its objects (`glasspane.operations.vms`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from glasspane.enums import Role
from glasspane.errors import Conflict
from glasspane.inventory.db import Database
from glasspane.settings import Settings


class Command(BaseModel):
    """What an operation is asked to do: every field bounded, unknown fields refused (the same
    model checks the request and, again, the stored task payload)."""

    model_config = ConfigDict(extra="forbid")


class Result(BaseModel):
    """What an operation answers (a task's result once it has succeeded)."""

    def written(self) -> list[str]:
        """The files it wrote, where its operation has an `output` and writes more than the
        one named (the disks of a VM archive): the CLI fetches each from a server."""
        return []


C = TypeVar("C", bound=Command)
R = TypeVar("R", bound=BaseModel)  # a Result, or an API answer's model it shares
Report = Callable[[int, str], None]


def no_report(percent: int, message: str) -> None:
    del percent, message


@dataclass(frozen=True)
class Caller:
    name: str
    role: Role


@dataclass(frozen=True)
class Target:
    """The object an operation acts on, as its resolver found it."""

    kind: str                        # "vm": the audit's and the task's object type
    name: str                        # "local/web-1": their object name
    label: str                       # "VM web-1 on host local": what messages call it
    state: str | None = None         # its state now (a VM's power state, a container's)


@dataclass(frozen=True)
class Admission:
    """What an operation's request-time checks may look at (before a task is queued)."""

    settings: Settings
    database: Database
    caller: Caller


@dataclass
class Context:
    """What a handler runs with: the server's settings, who asked, the database (to bring
    the inventory up to date afterwards), where progress goes, and the task it runs as."""

    settings: Settings
    caller: Caller
    database: Database | None = None
    progress: Report = no_report
    task: Any = None                 # the inventory.tasks.TaskContext, for task operations
    # Where the command's files are (operations.files): None, the server's image store.
    files: Any = None
    start: Any = None                # a byte progress `start(total, label)`, where one is drawn

    def inventory(self) -> Database:
        """The inventory database: the server's, or on this machine the one its settings
        name (--database), opened on first need (most local operations never need it)."""
        if self.database is None:
            self.database = Database.open(self.settings, self.settings.database_url or None)
        return self.database


# A resolver finds the target from the path's parameters, in an inventory session; it raises
# NotFound (a 404) when there is none.
Resolver = Callable[[Any, Mapping[str, str]], Target]
Handler = Callable[[Context, C], R]


@dataclass(frozen=True)
class Operation(Generic[C, R]):
    name: str                                   # "vm.snapshot"
    method: str                                 # "POST"
    path: str                                   # "/vms/{host}/{name}/snapshots"
    command: type[C]
    result: type[R]
    # None: only a server does it, by a route of its own (see `routed`); the CLI's local
    # runner refuses it.
    handler: Handler[C, R] | None
    role: Role = Role.OPERATOR
    resolve: Resolver | None = None
    # The target's states it starts from, of one enum (PowerState, ContainerState); None: any.
    states: frozenset[StrEnum] | None = None
    task: bool = False
    pinned: bool = False          # its task runs on the instance that accepted it
    cancellable: bool = False     # its task may be cancelled while it runs
    # The command's fields naming files (on a server, stored images; here, the user's own:
    # the CLI turns one into the other before `run`) and the one naming what it writes.
    files: tuple[str, ...] = ()
    output: str | None = None
    bytes: bool = False           # its progress is counted in bytes (a byte bar here)
    object_type: str = "vm"
    # The audit's and the task's object name: formatted with the path's parameters (or, for
    # an operation without a target, the command's fields), else given by `object_name`.
    target_name: str = ""
    object_name: Callable[[C], str] | None = None
    # Said with a refusal for the target's state, or, for an operation without a handler,
    # with the CLI's refusal to run it on this machine.
    hint: str | None = None
    admit: Callable[[Admission, C], None] | None = None   # request-time checks
    audit_detail: Callable[[C], str] | None = None
    summary: str = ""
    status: int | None = None     # its answer's status when not a task (201: made something)
    # Command fields sent in the query string rather than the body (a GET's: all but the
    # path's).
    query: tuple[str, ...] = ()
    errors: tuple[int, ...] = ()  # error statuses it may answer beyond those found below
    audit: str = ""               # its audit action, where that is not its name
    # False: its route is written by hand (a paged listing read off the event loop, a
    # session's logout): the same method, path and command, an answer its result reads.
    routed: bool = True
    # On a server, once it has succeeded: what it tells the server's own parts (given the
    # api.deps.Services: its syncer poked, its cache of tokens cleared).
    notify: Callable[[Any], None] | None = None
    path_params: tuple[str, ...] = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "path_params", tuple(re.findall(r"{(\w+)}", self.path)))
        fields = set(self.command.model_fields)
        if self.method == "GET":
            object.__setattr__(self, "query", tuple(
                name for name in self.command.model_fields if name not in self.path_params))
        unknown = set(self.path_params + self.query) - fields
        if unknown:
            raise TypeError(f"{self.name}: parameters {sorted(unknown)} are not fields "
                            f"of {self.command.__name__}")
        named = {*self.files, *filter(None, [self.output])} - fields
        if named:
            raise TypeError(f"{self.name}: file fields {sorted(named)} are not fields of "
                            f"{self.command.__name__}")
        if self.handler is None and self.routed:
            raise TypeError(f"{self.name}: a generated route needs a handler")

    @property
    def action(self) -> str:
        """Its name in the audit log."""
        return self.audit or self.name

    @property
    def verb(self) -> str:
        return self.name.rpartition(".")[2]

    def check_state(self, target: Target) -> None:
        """Conflict (a 409) unless the target is in a state this operation starts from."""
        if self.states is None or target.state in self.states:
            return
        kind = type(next(iter(self.states)))  # named in the enum's order, not the set's
        needed = [str(s) for s in kind if s in self.states]
        words = needed[0] if len(needed) == 1 else \
            ", ".join(needed[:-1]) + " or " + needed[-1]
        raise Conflict(f"{target.label} is {target.state}: {self.verb} needs it {words}",
                       hint=self.hint)

    def allows(self, role: Role | str, state: str | None) -> bool:
        """Whether a caller of `role` may run this on a target in `state` now."""
        return Role(role).allows(self.role) and (self.states is None or state in self.states)

    def object_name_of(self, command: C) -> str:
        if self.object_name is not None:
            return self.object_name(command)
        return self.target_name.format(**dict(command))

    def parse(self, payload: Mapping[str, Any]) -> C:
        """The command from a request's path and body, or from a stored task payload: by
        the fields' names (an alias is only how a request's body spells a field, as a
        snapshot's `name` beside the VM's)."""
        return self.command.model_validate(payload, by_alias=False, by_name=True)


CATALOGUE: dict[str, Operation[Any, Any]] = {}


def register(op: Operation[C, R]) -> Operation[C, R]:
    if op.name in CATALOGUE:
        raise ValueError(f"operation {op.name} is registered twice")
    CATALOGUE[op.name] = op
    return op


def operation(name: str, method: str, path: str, command: type[C], result: type[R],
              **options: Any) -> Callable[[Handler[C, R]], Operation[C, R]]:
    """Register the decorated function as operation `name`'s handler (`options`: the rest of
    `Operation`'s fields)."""
    def make(function: Handler[C, R]) -> Operation[C, R]:
        summary = options.pop("summary", None) or (function.__doc__ or "").strip()
        return register(Operation(name, method, path, command, result, function,
                                  summary=summary, **options))
    return make


def allowed(kind: str, resolver: Resolver, role: Role | str, state: str | None) -> list[str]:
    """The names of the operations on objects found by `resolver` that a caller of `role`
    may run on one in `state` now (what the page enables)."""
    return [op.name for op in CATALOGUE.values()
            if op.object_type == kind and op.resolve is resolver and op.allows(role, state)]
