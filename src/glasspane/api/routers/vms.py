"""VMs: listing and details from the inventory, creation, power actions, snapshots,
configuration with Ansible, export and destruction as tasks, and the serial console."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from glasspane.api.deps import (
    CurrentUser,
    Services,
    audit_as,
    audited,
    off_loop,
    operator,
    page,
    services,
    viewer,
)
from glasspane.api.routers.common import (
    NAME,
    Limit,
    Offset,
    count_of,
    find_host,
    find_vm,
    host_id_of,
    page_of,
    submit,
    total_of,
    vm_task,
)
from glasspane.api.routers.containers import container_view
from glasspane.errors import NotFound
from glasspane.guests.ansible_checks import check_extra_vars, check_playbook
from glasspane.guests.sandbox import Sandbox
from glasspane.inventory.handlers import VM_ACTIONS
from glasspane.inventory.models import Container, Host, Template, Vm
from glasspane.vms import service as vms
from glasspane.vms.service import check_labels

router = APIRouter(tags=["vms"])

# The power states each action may start from.
VM_ALLOWED = {"start": ("halted",), "shutdown": ("running", "paused"),
              "reboot": ("running",), "pause": ("running",),
              "resume": ("paused", "suspended"), "suspend": ("running",)}


def vm_view(vm: Vm, host_name: str, container_count: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {"host": host_name, "name": vm.name, "uuid": vm.uuid,
                            "power_state": vm.power_state, "addresses": vm.addresses,
                            "template": vm.template, "labels": vm.labels,
                            "containers_error": vm.containers_error,
                            "updated_at": vm.updated_at.isoformat()}
    if container_count is not None:
        view["container_count"] = container_count
    return view


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
    network_config: str | None = Field(default=None, max_length=64 * 1024)
    labels: dict[str, str] = Field(default_factory=dict, max_length=64)
    network: str | None = Field(default=None, min_length=1, max_length=128)
    full: bool = Field(default=False, description="a full copy, not a linked clone")


class VmAction(BaseModel):
    model_config = ConfigDict(extra="forbid")
    timeout: int = Field(default=90, ge=1, le=3600)


class Snapshot(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME)


class Configure(BaseModel):
    model_config = ConfigDict(extra="forbid")
    vms: list[str] = Field(default_factory=list, max_length=1000)
    label: str | None = Field(default=None, min_length=1, max_length=320)
    playbook: str = Field(min_length=1, max_length=256 * 1024)
    playbook_name: str = Field(default="playbook.yml", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
                               max_length=128)
    extra_vars: dict[str, Any] = Field(default_factory=dict, max_length=256)


@router.get("/vms")
async def list_vms(_: CurrentUser = Depends(viewer), found: Services = Depends(services),
             host: str | None = Query(None, max_length=64),
             state: str | None = Query(None, max_length=16),
             q: str | None = Query(None, max_length=128, description="name contains"),
             limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    ids = select(Vm.id)
    if host:
        ids = ids.where(Vm.host_id == host_id_of(host))
    if state:
        ids = ids.where(Vm.power_state == state)
    if q:
        ids = ids.where(Vm.name.contains(q, autoescape=True))

    def read() -> dict[str, Any]:
        with found.database.session() as session:
            rows = session.execute(
                select(Vm, Host.name, count_of(Container.vm_id, Vm.id)).join(Host)
                .where(Vm.id.in_(page_of(ids, Vm.sort_key, limit, offset)))
                .order_by(Vm.sort_key)).all()
            total = total_of(found, session, ids, ("vms", host, state, q), offset, limit,
                             len(rows))
            return page(limit, offset, total, [vm_view(v, h, n) for v, h, n in rows])
    return await off_loop(found, read)


@router.get("/vms/{host}/{name}")
def get_vm(host: str, name: str, _: CurrentUser = Depends(viewer),
           found: Services = Depends(services)) -> dict[str, Any]:
    with found.database.session() as session:
        vm = find_vm(session, host, name)
        view = vm_view(vm, host)
        view["containers"] = [container_view(c, host, name) for c in session.scalars(
            select(Container).where(Container.vm_id == vm.id).order_by(Container.name))]
        return view


@router.post("/vms", status_code=202, dependencies=[audited("vm.create", "vm")])
def create_vm(body: NewVm, request: Request, user: CurrentUser = Depends(operator),
              found: Services = Depends(services)) -> dict[str, Any]:
    check_labels(body.labels)  # a 400 now, not a failed task later
    with found.database.session() as session:
        host = find_host(session, body.host)
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
    return submit(request, found, user, "vm.create", "vm", f"{body.host}/{body.name}",
                  body.model_dump())


@router.post("/vms/configure", status_code=202,
             dependencies=[audited("vm.configure", "vm")])
def configure_vms(body: Configure, request: Request, user: CurrentUser = Depends(operator),
                  found: Services = Depends(services)) -> dict[str, Any]:
    """Run an Ansible playbook (one file, sent in the body) on the named VMs and/or those
    with a label, as a task: progress counts the playbook's tasks; the recap is the result.
    It runs in the server's sandbox, never as the server: refused (503) where none can be
    made, and so are plays that target the server itself and ansible_* extra variables."""
    if not body.vms and not body.label:
        raise HTTPException(422, "name at least one VM (vms) or a label (label)")
    check_extra_vars(body.extra_vars)
    check_playbook(body.playbook, body.playbook_name)
    Sandbox.for_settings(found.settings).check()
    target = ",".join(body.vms) or f"label {body.label}"
    return submit(request, found, user, "vm.configure", "vm", target[:255], body.model_dump())


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
    return submit(request, found, user, "vm.action", "vm", f"{host}/{name}",
                  {"host": host, "name": name, "action": action,
                   "timeout": (body or VmAction()).timeout}, action=f"vm.{action}")


@router.post("/vms/{host}/{name}/snapshots", status_code=202,
             dependencies=[audited("vm.snapshot", "vm", "{host}/{name}")])
def vm_snapshot(host: str, name: str, body: Snapshot, request: Request,
                user: CurrentUser = Depends(operator),
                found: Services = Depends(services)) -> dict[str, Any]:
    return vm_task(request, found, user, host, name, "vm.snapshot", snapshot=body.name)


@router.post("/vms/{host}/{name}/snapshots/{snapshot}/revert", status_code=202,
             dependencies=[audited("vm.revert", "vm", "{host}/{name}")])
def vm_revert(host: str, name: str, snapshot: str, request: Request,
              user: CurrentUser = Depends(operator),
              found: Services = Depends(services)) -> dict[str, Any]:
    """Back to the snapshot (a task: the VM's disks, and memory where the snapshot has it)."""
    return vm_task(request, found, user, host, name, "vm.revert", snapshot=snapshot)


@router.delete("/vms/{host}/{name}", status_code=202,
               dependencies=[audited("vm.destroy", "vm", "{host}/{name}")])
def destroy_vm(host: str, name: str, request: Request, user: CurrentUser = Depends(operator),
               found: Services = Depends(services)) -> dict[str, Any]:
    return vm_task(request, found, user, host, name, "vm.destroy")


@router.get("/vms/{host}/{name}/facts")
async def vm_facts(host: str, name: str, _: CurrentUser = Depends(viewer),
                   found: Services = Depends(services)) -> dict[str, Any]:
    """What the hypervisor says of the VM now: power state, addresses, disk, snapshots."""
    details = await run_in_threadpool(vms.vm_info, found.settings, name, host, False)
    facts = dataclasses.asdict(details)
    facts.pop("console_log", None)  # /console has it, as long as asked for
    return facts


@router.get("/vms/{host}/{name}/console", response_class=PlainTextResponse)
async def vm_console(host: str, name: str, _: CurrentUser = Depends(viewer),
                     found: Services = Depends(services),
                     lines: int = Query(100, ge=1, le=5000)) -> PlainTextResponse:
    return PlainTextResponse(await run_in_threadpool(vms.console_log, found.settings, name,
                                                     host, lines))


class Export(BaseModel):
    model_config = ConfigDict(extra="forbid")
    output: str = Field(min_length=1, max_length=128,
                        description="the stored image to write (its extension names the "
                                    "format unless `format` does)")
    format: str | None = Field(default=None, pattern="^(xva|ova|qcow2|vhd|vmdk|raw)$")
    disk: int = Field(default=0, ge=0, le=255)
    replace: bool = False


@router.post("/vms/{host}/{name}/export", status_code=202,
             dependencies=[audited("vm.export", "vm", "{host}/{name}")])
def export_vm(host: str, name: str, body: Export, request: Request,
              user: CurrentUser = Depends(operator),
              found: Services = Depends(services)) -> dict[str, Any]:
    """Export the halted VM into the image store: XVA or OVA (the whole VM), or one disk in
    any format (a task; download the result from /images/{output}/content)."""
    from glasspane.api.routers.images import actor, store_of
    store_of(found).check_new(body.output, body.replace, actor(user))
    with found.database.session() as session:
        state = find_vm(session, host, name).power_state
    if state in ("running", "paused"):
        raise HTTPException(409, f"VM {name} on host {host} is {state}: its disk is in use; "
                                 "shut it down first")
    return submit(request, found, user, "vm.export", "vm", f"{host}/{name}",
                  {"host": host, "name": name, **body.model_dump()}, pinned=True)


class Exec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    command: list[str] = Field(min_length=1, max_length=256,
                               description="the program and its arguments (no shell "
                                           "string: each is quoted for the VM on its own)")
    timeout: int = Field(default=60, ge=1, le=600)


@router.post("/vms/{host}/{name}/exec",
             dependencies=[audited("vm.exec", "vm", "{host}/{name}")])
async def exec_in_vm(host: str, name: str, body: Exec, request: Request,
                     _: CurrentUser = Depends(operator),
                     found: Services = Depends(services)) -> dict[str, Any]:
    """Run a command in the running VM as glasspane's user and answer with its exit code
    and output (stdout and stderr as they came, at most 1 MiB): `vm ssh VM -- COMMAND`."""
    if any(len(arg) > 65536 for arg in body.command):
        raise HTTPException(422, "an argument over 64 KiB")
    # The program alone goes to the audit log: arguments may carry secrets.
    audit_as(request, "vm.exec", "vm", f"{host}/{name}", body.command[0][:200])
    with found.database.session() as session:
        state = find_vm(session, host, name).power_state
    if state != "running":
        raise HTTPException(409, f"VM {name} on host {host} is {state}: start it first")
    done = await run_in_threadpool(vms.exec_in_vm, found.settings, name, body.command, host,
                                   body.timeout)
    return dataclasses.asdict(done)

