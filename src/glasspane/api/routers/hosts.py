"""Hosts: listing and details from the inventory, the host's live facts from its hypervisor,
and registering or forgetting a host (admins: it changes the server's own configuration and
stores the host's credentials, encrypted, never in its listings or the logs).  A host's URI
is shown without its password to everyone, and without its query (paths of the server's own
files, say) to all but admins."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, ConfigDict, Field, SecretStr
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from glasspane.api.deps import CurrentUser, Services, admin, audited, page, services, viewer
from glasspane.api.routers.common import Limit, Offset, counts, find_host, paged
from glasspane.errors import HostError, UsageError
from glasspane.hosts import service
from glasspane.hosts.registry import DRIVERS, HostRegistry
from glasspane.hypervisors.uris import redacted, without_secrets
from glasspane.inventory.events import publish
from glasspane.inventory.models import Host, Vm
from glasspane.inventory.sync import hosts_lock, sync_host
from glasspane.inventory.users import role_allows

router = APIRouter(tags=["hosts"])


def shown_uri(uri: str, user: CurrentUser) -> str:
    return redacted(uri, query=role_allows(user.role, "admin"))


def host_view(host: Host, user: CurrentUser, vm_count: int | None = None) -> dict[str, Any]:
    view: dict[str, Any] = {
        "name": host.name, "uri": shown_uri(host.uri, user), "driver": host.driver,
        "state": host.state,
        "error": host.error, "info": host.info,
        "last_seen": host.last_seen.isoformat() if host.last_seen else None}
    if vm_count is not None:
        view["vm_count"] = vm_count
    return view


class NewHost(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")
    uri: str = Field(min_length=1, max_length=512,
                     description="qemu:///system, qemu+ssh://root@kvm1/system, or a pool "
                                 "master's https://xcp1.example.com")
    driver: str = Field(default="libvirt", pattern="^(" + "|".join(DRIVERS) + ")$")
    check: bool = Field(default=True, description="connect before registering")
    user: str = Field(default="", max_length=128, description="xenapi: the XAPI user")
    password: SecretStr | None = Field(default=None, max_length=1024)
    verify_tls: bool = True
    ca_pem: str | None = Field(default=None, max_length=64 * 1024,
                               description="xenapi over https: trust exactly this PEM "
                                           "certificate (the pool master's)")


@router.get("/hosts")
async def list_hosts(user: CurrentUser = Depends(viewer), found: Services = Depends(services),
                     limit: int = Limit, offset: int = Offset) -> dict[str, Any]:
    query = select(Host).order_by(Host.name)
    with found.database.session() as session:
        total, rows = paged(session, query, limit, offset)
        by_host = counts(session, Vm.host_id, [h.id for (h,) in rows])
        return page(limit, offset, total,
                    [host_view(h, user, by_host.get(h.id, 0)) for (h,) in rows])


@router.get("/hosts/{name}")
def get_host(name: str, user: CurrentUser = Depends(viewer),
             found: Services = Depends(services)) -> dict[str, Any]:
    with found.database.session() as session:
        return host_view(find_host(session, name), user)


@router.get("/hosts/{name}/facts")
async def host_facts(name: str, user: CurrentUser = Depends(viewer),
                     found: Services = Depends(services)) -> dict[str, Any]:
    """What the hypervisor says now: CPU, memory, storage, networks, acceleration, VMs."""
    facts = dataclasses.asdict(await run_in_threadpool(service.host_info, found.settings,
                                                       name))
    facts["uri"] = shown_uri(facts["uri"], user)
    return facts


@router.post("/hosts", status_code=201, dependencies=[audited("host.add", "host")])
async def add_host(body: NewHost, request: Request, user: CurrentUser = Depends(admin),
                   found: Services = Depends(services),
                   wait: bool = Query(True, description="sync the host into the inventory "
                                                         "before answering")) -> dict[str, Any]:
    """Register a host (connecting to it first unless `check` is false); a xenapi host needs
    `user` and `password`."""
    request.state.audit = ("host.add", "host", body.name, redacted(body.uri, query=True))
    if body.driver == "xenapi" and (not body.user or body.password is None):
        raise UsageError("a xenapi host needs user and password")

    def add() -> None:
        ca_file = None
        try:
            if body.ca_pem:
                fd, ca_file = tempfile.mkstemp(prefix="glasspane-ca-", suffix=".pem")
                with os.fdopen(fd, "w") as f:
                    f.write(body.ca_pem)
            record = service.add_host(
                found.settings, body.name, body.uri, body.driver, check=body.check,
                user=body.user,
                password=body.password.get_secret_value() if body.password else None,
                verify_tls=body.verify_tls, ca_file=ca_file)
        finally:
            if ca_file:
                os.unlink(ca_file)
        if wait:
            sync_host(found.database, found.settings, record)
    try:
        await run_in_threadpool(add)
    except HostError as exc:  # the caller's URI or credentials, not this server, are wrong
        raise HTTPException(422, f"host {body.name} not registered: "
                                 f"{without_secrets(str(exc), body.uri)}") from None
    found.syncer.poke()
    with found.database.session() as session:
        host = session.scalar(select(Host).where(Host.name == body.name))
        if host is not None:
            return host_view(host, user)
    return {"name": body.name, "uri": shown_uri(body.uri, user), "driver": body.driver,
            "state": "unknown"}


@router.delete("/hosts/{name}", dependencies=[audited("host.remove", "host", "{name}")])
def remove_host(name: str, _: CurrentUser = Depends(admin),
                found: Services = Depends(services)) -> dict[str, Any]:
    """Forget the host: its registration, credentials and inventory rows (its VMs are not
    touched on the hypervisor)."""
    with hosts_lock, found.database.session() as session:
        HostRegistry(found.settings, found.database).remove(name)
        host = session.scalar(select(Host).where(Host.name == name))
        if host is not None:
            session.delete(host)
            publish(session, "host.removed", "host", name)
    return {"removed": name}
