"""The operations on hosts, each written once: registering one (admins: it changes the
server's own configuration and keeps the host's credentials, encrypted), its live facts,
forgetting it, and the listing the CLI shows.  A host's URI is shown without its password to
everyone, and without its query (paths of the server's own files, say) to all but admins."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pydantic import Field, field_validator
from sqlalchemy import select

from glasspane.api.results import HostFacts, HostRemoved, HostView
from glasspane.enums import HostState, Role
from glasspane.errors import HostError, HostRefused, UsageError
from glasspane.hosts import service
from glasspane.hosts.registry import DRIVERS, HOST_NAME, HostRegistry
from glasspane.hypervisors.uris import redacted, without_secrets
from glasspane.operations.catalogue import Command, Context, Result, operation

HOST = {"object_type": "host", "target_name": "{name}"}
HostName = Field(min_length=1, max_length=64)


def shown_uri(uri: str, role: Role | str) -> str:
    return redacted(uri, query=Role(role).allows(Role.ADMIN))


def host_view(host: Any, role: Role | str, vm_count: int | None = None) -> dict[str, Any]:
    """A host's view from `host`: its inventory row, or a row of its view's columns."""
    view: dict[str, Any] = {
        "name": host.name, "uri": shown_uri(host.uri, role), "driver": host.driver,
        "state": host.state, "error": host.error, "info": host.info,
        "last_seen": host.last_seen.isoformat() if host.last_seen else None}
    if vm_count is not None:
        view["vm_count"] = vm_count
    return view


# -- add ----------------------------------------------------------------------------------------
class AddHost(Command):
    name: str = Field(max_length=63, json_schema_extra={"pattern": HOST_NAME.pattern})
    uri: str = Field(min_length=1, max_length=512,
                     description="qemu:///system, qemu+ssh://root@kvm1/system, or a pool "
                                 "master's https://xcp1.example.com")
    driver: str = Field(default="libvirt", pattern="^(" + "|".join(DRIVERS) + ")$")
    check: bool = Field(default=True, description="connect before registering")
    user: str = Field(default="", max_length=128, description="xenapi: the XAPI user")
    password: str | None = Field(default=None, max_length=1024, repr=False,
                                 json_schema_extra={"format": "password", "writeOnly": True})
    verify_tls: bool = True
    ca_pem: str | None = Field(default=None, max_length=64 * 1024,
                               description="xenapi over https: trust exactly this PEM "
                                           "certificate (the pool master's)")
    wait: bool = Field(default=True, description="sync the host into the inventory before "
                                                 "answering")

    @field_validator("name")
    @classmethod
    def _name(cls, name: str) -> str:
        # Said in words (a 422 here, the CLI's usage error), not as the pattern.
        if not HOST_NAME.match(name):
            raise ValueError("invalid host name: lowercase letters, digits, '.', '_' and '-'")
        return name


@contextmanager
def pinned_file(pem: str | None) -> Iterator[str | None]:
    """The certificate to pin, as the file the hosts' service reads; gone afterwards."""
    if not pem:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="glasspane-ca-", suffix=".pem")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(pem)
        yield path
    finally:
        os.unlink(path)


def poke_syncer(found: Any) -> None:
    found.syncer.poke()  # its next pass now: the new host's watchers and containers


@operation("host.add", "POST", "/hosts", AddHost, HostView, role=Role.ADMIN, status=201,
           query=("wait",), notify=poke_syncer,
           audit_detail=lambda c: redacted(c.uri, query=True), **HOST)
def add(context: Context, command: AddHost) -> HostView:
    """Register a host (connecting to it first unless `check` is false); a xenapi host needs
    `user` and `password`."""
    from glasspane.inventory.models import Host
    from glasspane.inventory.sync import sync_host
    if command.driver == "xenapi" and (not command.user or command.password is None):
        raise UsageError("a xenapi host needs user and password")
    with pinned_file(command.ca_pem) as ca_file:
        try:
            record = service.add_host(
                context.settings, command.name, command.uri, command.driver,
                check=command.check, user=command.user, password=command.password,
                verify_tls=command.verify_tls, ca_file=ca_file)
        except HostError as exc:  # the caller's URI or credentials, not this server, are wrong
            raise HostRefused(f"host {command.name} not registered: "
                              f"{without_secrets(str(exc), command.uri)}") from None
    role = context.caller.role
    if context.database is not None and command.wait:  # a server's inventory, kept by it
        sync_host(context.database, context.settings, record)
        with context.database.session() as session:
            host = session.scalar(select(Host).where(Host.name == command.name))
            if host is not None:
                return HostView.model_validate(host_view(host, role))
    return HostView(name=record.name, uri=shown_uri(record.uri, role), driver=record.driver,
                    state=HostState.UNKNOWN)


# -- info, remove -------------------------------------------------------------------------------
class NamedHost(Command):
    name: str = HostName


@operation("host.info", "GET", "/hosts/{name}/facts", NamedHost, HostFacts, role=Role.VIEWER,
           errors=(404,), **HOST)
def info(context: Context, command: NamedHost) -> HostFacts:
    """What the hypervisor says now: CPU, memory, storage, networks, acceleration, VMs."""
    facts = dataclasses.asdict(service.host_info(context.settings, command.name))
    facts["uri"] = shown_uri(facts["uri"], context.caller.role)
    return HostFacts.model_validate(facts)


@operation("host.remove", "DELETE", "/hosts/{name}", NamedHost, HostRemoved, role=Role.ADMIN,
           errors=(404,), **HOST)
def remove(context: Context, command: NamedHost) -> HostRemoved:
    """Forget the host: its registration, credentials and inventory rows (its VMs are not
    touched on the hypervisor)."""
    from glasspane.inventory.events import publish
    from glasspane.inventory.models import Host
    from glasspane.inventory.sync import hosts_lock
    database = context.inventory()
    with hosts_lock, database.session() as session:
        HostRegistry(context.settings, database).remove(command.name)
        host = session.scalar(select(Host).where(Host.name == command.name))
        if host is not None:
            session.delete(host)
            publish(session, "host.removed", "host", command.name)
    return HostRemoved(removed=command.name)


# -- the listing (its route, a paged inventory read, is written by hand) -----------------------
class ListHosts(Command):
    limit: int = Field(default=1000, ge=1, le=1000)
    offset: int = Field(default=0, ge=0, le=10_000_000)


class HostRow(Result):
    name: str
    driver: str
    uri: str = Field(description="never with a password")
    state: str | None = Field(default=None, description="the server's view of it: ok, "
                                                        "unreachable, ...")


class HostRows(Result):
    items: list[HostRow]


@operation("host.list", "GET", "/hosts", ListHosts, HostRows, role=Role.VIEWER, routed=False,
           object_type="host")
def list_hosts(context: Context, command: ListHosts) -> HostRows:
    """The registered hosts (here: the registry, which no inventory pass has looked at)."""
    records = HostRegistry(context.settings).all()[command.offset:][:command.limit]
    return HostRows(items=[HostRow(name=r.name, driver=r.driver,
                                   uri=shown_uri(r.uri, context.caller.role))
                           for r in records])
