"""What each kind of task does: the same service functions the CLI calls, with progress, and
the inventory brought up to date for the object afterwards (whatever the outcome), so that the
pane shows the truth as soon as the task ends."""

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
from glasspane.vms import service as vms

VM_ACTIONS = ("start", "shutdown", "reboot", "pause", "resume", "suspend")
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


@handler("vm.create")
def create_vm(context: TaskContext) -> dict[str, Any]:
    p = context.params
    request = vms.VmRequest(p["name"], p["template"], p.get("cpus", 2),
                            p.get("memory_mib", 512), p.get("disk_gib"),
                            list(p.get("ssh_keys", [])), p.get("user_data"),
                            p.get("network_config"), not p.get("full", False),
                            labels=dict(p.get("labels", {})), network=p.get("network"))
    with host_refreshed(context, p["host"]):
        created = vms.create_vm(current_settings(), request, p["host"], report=context.progress)
    return {"name": created.name, "host": created.host, "addresses": created.addresses}


@handler("vm.action")
def vm_action(context: TaskContext) -> dict[str, Any]:
    p = context.params
    context.progress(10, f"{p['action']} {p['name']}")
    with host_refreshed(context, p["host"]):
        if p["action"] == "shutdown":
            graceful = vms.shutdown_vm(current_settings(), p["name"], p["host"],
                                       p.get("timeout", 90))
            result = {"power_state": "halted", "graceful": graceful}
        else:
            result = {"power_state": vms.vm_action(current_settings(), p["name"], p["action"],
                                                   p["host"])}
    return result


@handler("vm.snapshot")
def vm_snapshot(context: TaskContext) -> dict[str, Any]:
    p = context.params
    vms.snapshot_vm(current_settings(), p["name"], p["snapshot"], p["host"])
    return {"snapshot": p["snapshot"]}


@handler("vm.revert")
def vm_revert(context: TaskContext) -> dict[str, Any]:
    p = context.params
    with host_refreshed(context, p["host"]):
        vms.revert_vm(current_settings(), p["name"], p["snapshot"], p["host"])
    return {"snapshot": p["snapshot"]}


@handler("vm.destroy")
def vm_destroy(context: TaskContext) -> dict[str, Any]:
    p = context.params
    with host_refreshed(context, p["host"]):
        vms.destroy_vm(current_settings(), p["name"], p["host"])
    return {"destroyed": p["name"]}


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


@handler("vm.configure")
def configure_vms(context: TaskContext) -> dict[str, Any]:
    """Run the uploaded playbook (a single file: the server cannot see the caller's roles)."""
    import tempfile
    from pathlib import Path

    from glasspane.vms.configure import configure_vms as run
    p = context.params
    with tempfile.TemporaryDirectory(prefix="glasspane-playbook-") as work:
        playbook = Path(work) / Path(p["playbook_name"]).name
        playbook.write_text(p["playbook"])
        return run(current_settings(), playbook, list(p.get("vms", [])), p.get("label"),
                   dict(p.get("extra_vars", {})), report=context.progress)
