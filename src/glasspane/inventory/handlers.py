"""What each kind of task does: the same service functions the CLI calls, with progress, and
the inventory brought up to date for the object afterwards (whatever the outcome), so that the
pane shows the truth as soon as the task ends.  The catalogue's task operations (every VM
and container operation) are registered from it, each by one generic handler
(`operations.tasks`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from glasspane.hosts.registry import HostRegistry
from glasspane.inventory.db import Database
from glasspane.inventory.sync import sync_containers, sync_host
from glasspane.inventory.tasks import TaskContext, handler
from glasspane.settings import Settings

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


def register_operations() -> None:
    """A handler for each task operation of the catalogue."""
    from glasspane.operations import (  # noqa: F401 - fill the catalogue
        apps,
        containers,
        images,
        templates,
        vms,
    )
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


@handler("container.action")
def queued_container_action(context: TaskContext) -> dict[str, Any]:
    """A task queued by a release before the catalogue, which had one kind for every
    container action (and a `force` its removal always set): run as the action's own
    operation."""
    from glasspane.errors import UsageError
    from glasspane.operations.catalogue import CATALOGUE
    from glasspane.operations.tasks import run
    params = dict(context.params)
    action = params.pop("action", "")
    op = CATALOGUE.get(f"container.{action}")
    if op is None or not op.path.endswith(f"/actions/{op.verb}"):
        raise UsageError(f"task {context.task_id}: no such container action")
    if action != "remove":
        params.pop("force", None)
    return run(op, dataclasses.replace(context, params=params))
