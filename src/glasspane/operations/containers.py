"""Every operation on the containers inside VMs, each written once (as `operations.vms` does
for VMs): running a new container in a running VM, and the actions on one the inventory
knows, each from the states `CONTAINER_ACTION_STATES` gives it.  Task handlers bring the
running VMs' containers up to date afterwards, whatever the outcome."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Annotated, Any

from pydantic import ConfigDict, Field
from sqlalchemy import select

from glasspane.containers import deploy
from glasspane.containers import service as containers
from glasspane.enums import CONTAINER_ACTION_STATES, ContainerAction, ContainerState, Role
from glasspane.errors import Conflict, NotFound
from glasspane.inventory.models import Container, Host, Vm
from glasspane.operations.catalogue import (
    Admission,
    Command,
    Context,
    Operation,
    Result,
    Target,
    allowed,
    operation,
    register,
)

CONTAINERS_PATH = "/containers/{host}/{vm}"
CONTAINER_PATH = CONTAINERS_PATH + "/{name}"
CONTAINER_TARGET = "{host}/{vm}/{name}"
# Podman's own words for states Docker's API names otherwise (as the listings read them).
ENGINE_WORDS = {"stopped": ContainerState.EXITED, "configured": ContainerState.CREATED,
                "initialized": ContainerState.CREATED}


def container_state(reported: str) -> str:
    return str(ENGINE_WORDS.get(reported, reported))


def find_container(session: Any, params: Mapping[str, str]) -> Target:
    """The container named in the path, as the inventory knows it (NotFound otherwise,
    naming the container, its VM and the host)."""
    host, vm, name = params["host"], params["vm"], params["name"]
    vm_id = session.scalar(select(Vm.id).join(Host).where(Host.name == host, Vm.name == vm))
    if vm_id is None:
        raise NotFound(f"no VM named {vm!r} on host {host}")
    state = session.scalar(select(Container.state).where(Container.vm_id == vm_id,
                                                         Container.name == name))
    if state is None:
        raise NotFound(f"no container {name!r} in VM {vm} on host {host}")
    return Target("container", f"{host}/{vm}/{name}", f"container {name} on VM {vm} "
                  f"(host {host})", container_state(state))


def container_actions(role: Role | str, state: str | None) -> list[str]:
    """The operations a caller of `role` may run on a container in `state` now."""
    return allowed("container", find_container, role, container_state(state or ""))


@contextmanager
def containers_refreshed(context: Context) -> Iterator[None]:
    """The running VMs' containers brought up to date in the inventory after the block,
    whatever its outcome (the CLI's local run has no inventory to update)."""
    try:
        yield
    finally:
        if context.database is not None:
            from glasspane.inventory.sync import sync_containers
            sync_containers(context.database, context.settings)


class ContainerRef(Command):
    host: str = Field(min_length=1, max_length=64, description="the VM's host")
    vm: str = Field(min_length=1, max_length=128)
    name: str = Field(min_length=1, max_length=255)


# -- run --------------------------------------------------------------------------------------
class NewContainer(Command):
    host: str = Field(min_length=1, max_length=64, description="the VM's host")
    vm: str = Field(min_length=1, max_length=128)
    image: str = Field(min_length=1, max_length=512)
    name: str | None = Field(default=None, max_length=128,
                             description="container name (default: the engine's)")
    command: list[Annotated[str, Field(max_length=65536)]] | None = Field(
        default=None, max_length=256, description="overrides the image's")
    ports: list[Annotated[str, Field(max_length=64)]] = Field(
        default_factory=list, max_length=64, description="[IP:]HOST:CONTAINER[/PROTO] each")
    env: list[Annotated[str, Field(max_length=65536)]] = Field(
        default_factory=list, max_length=256, description="KEY=VALUE each")
    volumes: list[Annotated[str, Field(max_length=4096)]] = Field(
        default_factory=list, max_length=64,
        description="SOURCE:/DEST[:ro] each (SOURCE: a path or volume in the VM)")
    restart: str | None = Field(default=None, max_length=32,
                                description="one of no, always, unless-stopped, "
                                                        "on-failure[:N]")
    labels: dict[str, str] = Field(default_factory=dict, max_length=64,
                                   description="labels of the container")

    def request(self) -> deploy.RunRequest:
        return deploy.RunRequest(self.image, self.name, self.command, list(self.ports),
                                 list(self.env), list(self.volumes), self.restart,
                                 dict(self.labels))


class Started(Result):
    id: str
    name: str
    state: str


def admit_run(admission: Admission, command: NewContainer) -> None:
    """A 400 for a bad port, variable, volume or name, a 404 for a VM the inventory lacks
    and a 409 for one not running: now, not as a failed task later."""
    command.request().validate()
    with admission.database.session() as session:
        state = session.scalar(select(Vm.power_state).join(Host).where(
            Host.name == command.host, Vm.name == command.vm))
    if state is None:
        raise NotFound(f"no VM named {command.vm!r} on host {command.host}")
    if state != "running":
        raise Conflict(f"VM {command.vm} on host {command.host} is {state}: start it first")


@operation("container.run", "POST", CONTAINERS_PATH, NewContainer, Started, task=True,
           object_type="container", target_name="{host}/{vm}", admit=admit_run,
           object_name=lambda c: f"{c.host}/{c.vm}/{c.name or c.image}")
def run(context: Context, command: NewContainer) -> Started:
    """Run an image as a new container in the running VM: its name, short id and state."""
    with containers_refreshed(context):
        return Started.model_validate(deploy.run(context.settings, command.host, command.vm,
                                                 command.request()))


# -- actions ----------------------------------------------------------------------------------
class Act(ContainerRef):
    grace: int = Field(default=10, ge=0, le=3600,
                       description="stop, restart: seconds before the engine kills it")


class Acted(Result):
    state: str = Field(description="the container's state afterwards, in the engine's words")


def act(action: ContainerAction) -> Callable[[Context, Act], Acted]:
    def run_action(context: Context, command: Act) -> Acted:
        context.progress(10, f"{action} {command.name}")
        with containers_refreshed(context):
            return Acted(state=containers.act(context.settings, command.host, command.vm,
                                              command.name, action, command.grace))
    return run_action


ACTION_SUMMARIES = {
    ContainerAction.START: "Start the created or exited container.",
    ContainerAction.STOP: "Stop the container (SIGTERM, then SIGKILL after `grace` seconds).",
    ContainerAction.RESTART: "Restart the container.",
    ContainerAction.PAUSE: "Freeze the running container's processes.",
    ContainerAction.UNPAUSE: "Thaw the paused container's processes.",
}
for _action, _summary in ACTION_SUMMARIES.items():
    register(Operation(f"container.{_action}", "POST", f"{CONTAINER_PATH}/actions/{_action}",
                       Act, Acted, act(_action), resolve=find_container,
                       states=CONTAINER_ACTION_STATES[_action], task=True,
                       object_type="container", target_name=CONTAINER_TARGET,
                       summary=_summary))


class Remove(ContainerRef):
    force: bool = Field(default=True, description="remove a running container too")


class Removed(Result):
    removed: str


@operation("container.remove", "POST", f"{CONTAINER_PATH}/actions/remove", Remove, Removed,
           resolve=find_container, states=CONTAINER_ACTION_STATES[ContainerAction.REMOVE],
           task=True, object_type="container", target_name=CONTAINER_TARGET)
def remove(context: Context, command: Remove) -> Removed:
    """Remove the container and its anonymous volumes (a running one too unless `force` is
    false)."""
    with containers_refreshed(context):
        containers.remove(context.settings, command.host, command.vm, command.name,
                          command.force)
    return Removed(removed=command.name)


# -- reads: what the engine in the VM says now (answered at once, to viewers too) -------------
class VmEngine(Command):
    host: str = Field(min_length=1, max_length=64, description="the VM's host")
    vm: str = Field(min_length=1, max_length=128)


class EngineView(Result):
    """The container engine found in a VM."""

    kind: str = Field(description="docker or podman")
    version: str
    api_version: str
    socket: str = Field(description="inside the VM")
    sudo: bool
    relay: str
    started: list[str] = Field(description="units the probe started")
    os: str
    arch: str


@operation("container.engine", "GET", "/vms/{host}/{vm}/engine", VmEngine, EngineView,
           role=Role.VIEWER, object_type="container", target_name="{host}/{vm}")
def engine(context: Context, command: VmEngine) -> EngineView:
    """The container engine found in the VM: kind, version, API version, socket."""
    found = containers.engine_info(context.settings, command.host, command.vm)
    return EngineView.model_validate(dataclasses.asdict(found))


class ContainerInspection(Result):
    """The engine's own inspection of a container, as it gives it (Docker's and Podman's
    compatible API); a viewer sees the environment's names, each value replaced by ***."""

    model_config = ConfigDict(extra="allow")
    Id: str | None = None
    Name: str | None = None
    Image: str | None = None
    State: dict[str, Any] | None = None
    Config: dict[str, Any] | None = None


@operation("container.inspect", "GET", f"{CONTAINER_PATH}/inspect", ContainerRef,
           ContainerInspection, role=Role.VIEWER, object_type="container",
           target_name=CONTAINER_TARGET)
def inspect(context: Context, command: ContainerRef) -> ContainerInspection:
    """The engine's inspection of the container; a viewer sees the names of its environment
    variables but not their values (they are where containers are given their passwords)."""
    found = containers.inspect(context.settings, command.host, command.vm, command.name)
    config = found.get("Config")
    if context.caller.role is Role.VIEWER and isinstance(config, dict) \
            and isinstance(config.get("Env"), list):
        config["Env"] = [f"{str(entry).partition('=')[0]}=***" for entry in config["Env"]]
    return ContainerInspection.model_validate(found)


class ContainerProcesses(Result):
    titles: list[str]
    processes: list[list[str]]


@operation("container.top", "GET", f"{CONTAINER_PATH}/top", ContainerRef, ContainerProcesses,
           role=Role.VIEWER, object_type="container", target_name=CONTAINER_TARGET)
def top(context: Context, command: ContainerRef) -> ContainerProcesses:
    """The container's processes: column titles and one row per process."""
    titles, rows = containers.top(context.settings, command.host, command.vm, command.name)
    return ContainerProcesses(titles=titles, processes=rows)


class ContainerStatsView(Result):
    cpu_percent: float
    memory_bytes: int
    memory_limit: int
    pids: int
    network_rx: int
    network_tx: int


@operation("container.stats", "GET", f"{CONTAINER_PATH}/stats", ContainerRef,
           ContainerStatsView, role=Role.VIEWER, object_type="container",
           target_name=CONTAINER_TARGET)
def stats(context: Context, command: ContainerRef) -> ContainerStatsView:
    """CPU, memory, processes and network of the container, one sample."""
    numbers = containers.stats(context.settings, command.host, command.vm, command.name)
    return ContainerStatsView.model_validate(dataclasses.asdict(numbers))
