"""Everything that changes a VM or a container: checked against the inventory's view of the
object first (a 409 for an action its state does not allow), then queued as a task (202)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from glasspane.api.deps import CurrentUser, Services, audit_as, audited, operator, services
from glasspane.api.routers.inventory import find_vm
from glasspane.containers.deploy import RunRequest
from glasspane.errors import NotFound
from glasspane.inventory import tasks
from glasspane.inventory.handlers import CONTAINER_ACTIONS, VM_ACTIONS
from glasspane.inventory.models import Container, Host, Template
from glasspane.vms.service import check_labels

router = APIRouter(tags=["actions"])

# The power states each action may start from.
VM_ALLOWED = {"start": ("halted",), "shutdown": ("running", "paused"),
              "reboot": ("running",), "pause": ("running",),
              "resume": ("paused", "suspended"), "suspend": ("running",)}
CONTAINER_ALLOWED = {"start": ("exited", "created", "stopped"), "stop": ("running", "paused"),
                     "restart": ("running", "exited", "created", "stopped"),
                     "pause": ("running",), "unpause": ("paused",)}
NAME = r"^[a-z0-9][a-z0-9-]{0,62}$"


class NewVm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)
    template: str = Field(min_length=1, max_length=128)
    host: str = Field(default="local", min_length=1, max_length=64)
    cpus: int = Field(default=2, ge=1, le=64)
    memory_mib: int = Field(default=512, ge=128, le=1 << 20)
    disk_gib: int | None = Field(default=None, ge=1, le=65536)
    ssh_keys: list[str] = Field(default_factory=list, max_length=32)
    user_data: str | None = Field(default=None, max_length=256 * 1024)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    network: str | None = Field(default=None, min_length=1, max_length=128)


class VmAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: int = Field(default=90, ge=1, le=3600)


class Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)


class NewContainer(BaseModel):
    model_config = ConfigDict(extra="forbid")
    image: str = Field(min_length=1, max_length=512)
    name: str | None = Field(default=None, max_length=128)
    command: list[str] | None = Field(default=None, max_length=256)
    ports: list[str] = Field(default_factory=list, max_length=64)
    env: list[str] = Field(default_factory=list, max_length=256)
    volumes: list[str] = Field(default_factory=list, max_length=64)
    restart: str | None = Field(default=None, max_length=32)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)


def _submit(request: Request, found: Services, user: CurrentUser, kind: str,
            object_type: str, object_name: str, params: dict[str, Any], action: str,
            cancellable: bool = False) -> dict[str, Any]:
    audit_as(request, action, object_type, object_name)
    task = tasks.submit(found.database, kind, object_type, object_name, params, user.name,
                        cancellable)
    request.state.task = task["id"]
    return task


@router.post("/vms", status_code=202, dependencies=[audited("vm.create", "vm")])
def create_vm(body: NewVm, request: Request, user: CurrentUser = Depends(operator),
              found: Services = Depends(services)) -> dict[str, Any]:
    check_labels(body.labels)  # a 400 now, not a failed task later
    with found.database.session() as session:
        host = session.scalar(select(Host).where(Host.name == body.host))
        if host is None:
            raise NotFound(f"no host named {body.host!r}")
        if session.scalar(select(Template).where(Template.host_id == host.id,
                                                 Template.name == body.template)) is None:
            raise NotFound(f"no template named {body.template!r} on host {body.host}")
        try:
            find_vm(session, body.host, body.name)
        except NotFound:
            pass
        else:
            raise HTTPException(409, f"a VM named {body.name!r} already exists on host "
                                     f"{body.host}")
    return _submit(request, found, user, "vm.create", "vm", f"{body.host}/{body.name}",
                   body.model_dump(), "vm.create")


class Configure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vms: list[str] = Field(default_factory=list, max_length=1000)
    label: str | None = Field(default=None, min_length=1, max_length=320)
    playbook: str = Field(min_length=1, max_length=256 * 1024)
    playbook_name: str = Field(default="playbook.yml", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                               max_length=128)
    extra_vars: dict[str, Any] = Field(default_factory=dict, max_length=256)


@router.post("/vms/configure", status_code=202,
             dependencies=[audited("vm.configure", "vm")])
def configure_vms(body: Configure, request: Request, user: CurrentUser = Depends(operator),
                  found: Services = Depends(services)) -> dict[str, Any]:
    """Run an Ansible playbook (one file, sent in the body) on the named VMs and/or those
    with a label, as a task: progress counts the playbook's tasks; the recap is the result."""
    if not body.vms and not body.label:
        raise HTTPException(422, "name at least one VM (vms) or a label (label)")
    target = ",".join(body.vms) or f"label {body.label}"
    return _submit(request, found, user, "vm.configure", "vm", target[:255],
                   body.model_dump(), "vm.configure")


@router.post("/vms/{host}/{name}/actions/{action}", status_code=202,
             dependencies=[audited("vm.{action}", "vm", "{host}/{name}")])
def vm_action(host: str, name: str, action: str, request: Request,
              body: VmAction | None = None, user: CurrentUser = Depends(operator),
              found: Services = Depends(services)) -> dict[str, Any]:
    if action not in VM_ACTIONS:
        raise NotFound(f"no VM action {action!r} (one of {', '.join(VM_ACTIONS)})")
    with found.database.session() as session:
        state = find_vm(session, host, name).power_state
    if state not in VM_ALLOWED[action]:
        raise HTTPException(409, f"VM {name} on host {host} is {state}: cannot {action} it")
    return _submit(request, found, user, "vm.action", "vm", f"{host}/{name}",
                   {"host": host, "name": name, "action": action,
                    "timeout": (body or VmAction()).timeout}, f"vm.{action}")


@router.post("/vms/{host}/{name}/snapshots", status_code=202,
             dependencies=[audited("vm.snapshot", "vm", "{host}/{name}")])
def vm_snapshot(host: str, name: str, body: Snapshot, request: Request,
                user: CurrentUser = Depends(operator),
                found: Services = Depends(services)) -> dict[str, Any]:
    return _vm_task(request, found, user, host, name, "vm.snapshot", snapshot=body.name)


def _vm_task(request: Request, found: Services, user: CurrentUser, host: str, name: str,
             kind: str, **params: Any) -> dict[str, Any]:
    """Task `kind` on a VM the inventory knows (404 otherwise)."""
    with found.database.session() as session:
        find_vm(session, host, name)
    return _submit(request, found, user, kind, "vm", f"{host}/{name}",
                   {"host": host, "name": name, **params}, kind)


@router.post("/vms/{host}/{name}/snapshots/{snapshot}/revert", status_code=202,
             dependencies=[audited("vm.revert", "vm", "{host}/{name}")])
def vm_revert(host: str, name: str, snapshot: str, request: Request,
              user: CurrentUser = Depends(operator),
              found: Services = Depends(services)) -> dict[str, Any]:
    """Back to the snapshot (a task: the VM's disks, and memory where the snapshot has it)."""
    return _vm_task(request, found, user, host, name, "vm.revert", snapshot=snapshot)


@router.delete("/vms/{host}/{name}", status_code=202,
               dependencies=[audited("vm.destroy", "vm", "{host}/{name}")])
def destroy_vm(host: str, name: str, request: Request, user: CurrentUser = Depends(operator),
               found: Services = Depends(services)) -> dict[str, Any]:
    return _vm_task(request, found, user, host, name, "vm.destroy")


def _find_container(found: Services, host: str, vm: str, name: str) -> Container:
    with found.database.session() as session:
        vm_row = find_vm(session, host, vm)
        container = session.scalar(select(Container).where(Container.vm_id == vm_row.id,
                                                            Container.name == name))
        if container is None:
            raise NotFound(f"no container {name!r} in VM {vm} on host {host}")
        return container


@router.post("/containers/{host}/{vm}/{name}/actions/{action}", status_code=202,
             dependencies=[audited("container.{action}", "container", "{host}/{vm}/{name}")])
def container_action(host: str, vm: str, name: str, action: str, request: Request,
                     user: CurrentUser = Depends(operator),
                     found: Services = Depends(services)) -> dict[str, Any]:
    if action not in CONTAINER_ACTIONS:
        raise NotFound(f"no container action {action!r} "
                       f"(one of {', '.join(CONTAINER_ACTIONS)})")
    container = _find_container(found, host, vm, name)
    if action != "remove" and container.state not in CONTAINER_ALLOWED[action]:
        raise HTTPException(409, f"container {name} in VM {vm} is {container.state}: "
                                 f"cannot {action} it")
    return _submit(request, found, user, "container.action", "container",
                   f"{host}/{vm}/{name}", {"host": host, "vm": vm, "name": name,
                                           "action": action, "force": True},
                   f"container.{action}")


@router.post("/containers/{host}/{vm}", status_code=202,
             dependencies=[audited("container.run", "container", "{host}/{vm}")])
def run_container(host: str, vm: str, body: NewContainer, request: Request,
                  user: CurrentUser = Depends(operator),
                  found: Services = Depends(services)) -> dict[str, Any]:
    RunRequest(body.image, body.name, body.command, body.ports, body.env, body.volumes,
               body.restart, body.labels).validate()  # a 400 now, not a failed task later
    with found.database.session() as session:
        state = find_vm(session, host, vm).power_state
    if state != "running":
        raise HTTPException(409, f"VM {vm} on host {host} is {state}: start it first")
    return _submit(request, found, user, "container.run", "container",
                   f"{host}/{vm}/{body.name or body.image}",
                   {"host": host, "vm": vm, **body.model_dump()}, "container.run")
