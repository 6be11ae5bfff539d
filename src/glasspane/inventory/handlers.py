"""What each kind of task does: the same service functions the CLI calls, with progress, and
the inventory brought up to date for the object afterwards (whatever the outcome), so that the
pane shows the truth as soon as the task ends.  The catalogue's task operations (every VM
operation) are registered from it, each by one generic handler (`operations.tasks`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from glasspane.containers import deploy
from glasspane.containers import service as containers
from glasspane.hosts.registry import HostRegistry
from glasspane.inventory.db import Database
from glasspane.inventory.sync import sync_containers, sync_host
from glasspane.inventory.tasks import TaskContext, handler
from glasspane.settings import Settings

CONTAINER_ACTIONS = (*containers.ACTIONS, "remove")

_settings: dict[str, Settings] = {}


def configure(settings: Settings) -> None:
    """The settings the handlers act with (the server's; its playbooks in the sandbox)."""
    _settings["current"] = dataclasses.replace(settings, sandbox_playbooks=True)


def current_settings() -> Settings:
    return _settings.get("current") or dataclasses.replace(Settings.load(),
                                                           sandbox_playbooks=True)


def refresh_host(database: Database, host: str) -> None:
    settings = current_settings()
    sync_host(database, settings, HostRegistry(settings, database).get(host))


@contextmanager
def host_refreshed(context: TaskContext, host: str) -> Iterator[None]:
    """Host `host` brought up to date in the inventory after the block, whatever its
    outcome."""
    try:
        yield
    finally:
        refresh_host(context.database, host)


@contextmanager
def containers_refreshed(context: TaskContext) -> Iterator[None]:
    """The running VMs' containers brought up to date after the block, whatever its
    outcome."""
    try:
        yield
    finally:
        sync_containers(context.database, current_settings())


@handler("container.action")
def container_action(context: TaskContext) -> dict[str, Any]:
    p = context.params
    settings = current_settings()
    with containers_refreshed(context):
        if p["action"] == "remove":
            containers.remove(settings, p["host"], p["vm"], p["name"], p.get("force", False))
            result: dict[str, Any] = {"removed": p["name"]}
        else:
            result = {"state": containers.act(settings, p["host"], p["vm"], p["name"],
                                              p["action"])}
    return result


@handler("container.run")
def container_run(context: TaskContext) -> dict[str, Any]:
    p = context.params
    request = deploy.RunRequest(p["image"], p.get("name"), p.get("command"),
                                list(p.get("ports", [])), list(p.get("env", [])),
                                list(p.get("volumes", [])), p.get("restart"),
                                dict(p.get("labels", {})))
    with containers_refreshed(context):
        return deploy.run(current_settings(), p["host"], p["vm"], request)


def register_operations() -> None:
    """A handler for each task operation of the catalogue."""
    from glasspane.operations import vms  # noqa: F401 - fills the catalogue
    from glasspane.operations.tasks import register_tasks
    register_tasks()


register_operations()


@handler("vm.action")
def queued_power_action(context: TaskContext) -> dict[str, Any]:
    """A task queued by a release before the catalogue, which had one kind for every power
    action: run as the action's own operation."""
    from glasspane.errors import UsageError
    from glasspane.operations.catalogue import CATALOGUE
    from glasspane.operations.tasks import run
    params = dict(context.params)
    op = CATALOGUE.get(f"vm.{params.pop('action', '')}")
    if op is None or not op.path.endswith(f"/actions/{op.verb}"):
        raise UsageError(f"task {context.task_id}: no such VM action")
    return run(op, dataclasses.replace(context, params=params))
