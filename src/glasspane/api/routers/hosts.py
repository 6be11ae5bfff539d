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

from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, SecretStr, TypeAdapter
from sqlalchemy import select
from starlette.concurrency import run_in_threadpool

from glasspane.api.deps import (
    CurrentUser,
    Services,
    admin,
    audited,
    off_loop,
    page,
    services,
    viewer,
)
from glasspane.api.results import HostFacts, HostListed, HostRemoved, HostView
from glasspane.api.routers.common import (
    LIMIT,
    OFFSET,
    Limit,
    Offset,
    count_all,
    count_of,
    encoded,
    find_host,
    total_of,
)
from glasspane.api.schemas import AUTHENTICATED, Page, errors
from glasspane.errors import HostError, UsageError
from glasspane.hosts import service
from glasspane.hosts.registry import DRIVERS, HostRegistry
from glasspane.hypervisors.uris import redacted, without_secrets
from glasspane.inventory.events import publish
from glasspane.inventory.models import Host, Vm
from glasspane.inventory.sync import hosts_lock, sync_host
from glasspane.inventory.users import role_allows

router = APIRouter(tags=["hosts"], responses=AUTHENTICATED)


def shown_uri(uri: str, user: CurrentUser) -> str:
    return redacted(uri, query=role_allows(user.role, "admin"))


# What a listing reads of each host: its view's columns, not the ORM object.
HOST_COLUMNS = (Host.name, Host.uri, Host.driver, Host.state, Host.error, Host.info,
                Host.last_seen)
# The listing's statements, built once, the page bound (`params`).
HOSTS_PAGE = select(*HOST_COLUMNS, count_of(Vm.host_id, Host.id)).order_by(Host.name) \
    .limit(LIMIT).offset(OFFSET)
HOSTS_COUNT = count_all(select(Host.id))
HOST_PAGE = TypeAdapter(Page[HostListed])


def host_view(host: Any, user: CurrentUser, vm_count: int | None = None) -> dict[str, Any]:
    """A host's view from `host`: its inventory row, or a row of `HOST_COLUMNS`."""
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


@router.get("/hosts", response_model=Page[HostListed], response_model_exclude_unset=True)
async def list_hosts(user: CurrentUser = Depends(viewer), found: Services = Depends(services),
                     limit: int = Limit, offset: int = Offset) -> Response:
    params = {"limit": limit, "offset": offset}

    def read() -> Response:
        with found.database.reading() as connection:
            rows = connection.execute(HOSTS_PAGE, params).all()
            total = total_of(found, connection, HOSTS_COUNT, params, ("hosts",), offset, limit,
                             len(rows))
        return encoded(HOST_PAGE, page(limit, offset, total,
                                       [host_view(r, user, r[-1]) for r in rows]),
                       exclude_unset=True)
    return await off_loop(found, user, read)


@router.get("/hosts/{name}", response_model=HostView, response_model_exclude_unset=True,
            responses=errors(404))
def get_host(name: str, user: CurrentUser = Depends(viewer),
             found: Services = Depends(services)) -> dict[str, Any]:
    with found.database.session() as session:
        return host_view(find_host(session, name), user)


@router.get("/hosts/{name}/facts", response_model=HostFacts,
            responses=errors(404, 502, 503))
async def host_facts(name: str, user: CurrentUser = Depends(viewer),
                     found: Services = Depends(services)) -> dict[str, Any]:
    """What the hypervisor says now: CPU, memory, storage, networks, acceleration, VMs."""
    facts = dataclasses.asdict(await run_in_threadpool(service.host_info, found.settings,
                                                       name))
    facts["uri"] = shown_uri(facts["uri"], user)
    return facts


@router.post("/hosts", status_code=201, response_model=HostView,
             response_model_exclude_unset=True,
             responses=errors(408, 413), dependencies=[audited("host.add", "host")])
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


@router.delete("/hosts/{name}", response_model=HostRemoved, responses=errors(404),
               dependencies=[audited("host.remove", "host", "{name}")])
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
