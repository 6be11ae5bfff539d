"""The inventory's tables: what glasspane knows of hosts, VMs, containers and templates (synced
from the drivers), and what it records itself: the registered hosts and their secrets
(`host_registrations`, apart from the synced `hosts`: see glasspane.hosts.registry), users and
their tokens, tasks, events and the audit log.  SQLAlchemy 2 typed models; the schema
itself is made by the Alembic migrations in `migrations/`, never by `create_all`, so SQLite
and PostgreSQL get the same one."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Connection,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    select,
)
from sqlalchemy import event as sa_event
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        dt.datetime: DateTime(timezone=True), dict[str, Any]: JSON, list[Any]: JSON}


class User(Base):
    __tablename__ = "users"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # admin | operator | viewer
    disabled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(64))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)  # SHA-256 of the secret
    prefix: Mapped[str] = mapped_column(String(12))   # shown in listings to tell tokens apart
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    user: Mapped[User] = relationship()


class Host(Base):
    __tablename__ = "hosts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    uri: Mapped[str] = mapped_column(String(512))
    driver: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="unknown")  # ok | unreachable
    error: Mapped[str | None] = mapped_column(Text, default=None)
    info: Mapped[dict[str, Any]] = mapped_column(default=dict)
    last_seen: Mapped[dt.datetime | None] = mapped_column(default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


class HostRegistration(Base):
    """A host an admin registered: how to reach it and its credentials (glasspane.hosts.
    registry).  The local host has none: it is always there."""
    __tablename__ = "host_registrations"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    uri: Mapped[str] = mapped_column(String(512))
    driver: Mapped[str] = mapped_column(String(16))
    user: Mapped[str] = mapped_column(String(128), default="")  # xenapi: the XAPI user
    verify_tls: Mapped[bool] = mapped_column(Boolean, default=True)
    ca_pem: Mapped[str | None] = mapped_column(Text, default=None)  # the pinned certificate
    password: Mapped[str | None] = mapped_column(Text, default=None)  # a Fernet token
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)


def sort_key(*names: str) -> str:
    """The order of listings (host, then VM, then container), kept in each row so that a
    filtered page is read from one index instead of sorting a join.  The unit separator sorts
    before every character a name may have, so keys order as the tuples of names do."""
    return "\x1f".join(names)


class Vm(Base):
    __tablename__ = "vms"
    __table_args__ = (UniqueConstraint("host_id", "name"),
                      Index("ix_vms_sort_key", "sort_key", "name"),
                      Index("ix_vms_power_state_sort_key", "power_state", "sort_key"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    sort_key: Mapped[str] = mapped_column(String(200), default="")  # sort_key(host, name)
    uuid: Mapped[str] = mapped_column(String(64))
    power_state: Mapped[str] = mapped_column(String(16), index=True)
    addresses: Mapped[list[Any]] = mapped_column(default=list)
    template: Mapped[str | None] = mapped_column(String(128), default=None)
    cpus: Mapped[int | None] = mapped_column(Integer, default=None)
    memory_mib: Mapped[int | None] = mapped_column(Integer, default=None)
    labels: Mapped[dict[str, Any]] = mapped_column(default=dict)
    containers_error: Mapped[str | None] = mapped_column(Text, default=None)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    host: Mapped[Host] = relationship()


class Container(Base):
    __tablename__ = "containers"
    __table_args__ = (UniqueConstraint("vm_id", "name"),
                      Index("ix_containers_sort_key", "sort_key", "name"),
                      Index("ix_containers_state_sort_key", "state", "sort_key"))
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    vm_id: Mapped[int] = mapped_column(ForeignKey("vms.id", ondelete="CASCADE"), index=True)
    engine_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255), index=True)
    sort_key: Mapped[str] = mapped_column(String(512), default="")  # (host, VM, name)
    image: Mapped[str] = mapped_column(String(512))
    state: Mapped[str] = mapped_column(String(16), index=True)
    status: Mapped[str] = mapped_column(String(255), default="")
    ports: Mapped[list[Any]] = mapped_column(default=list)
    app: Mapped[str | None] = mapped_column(String(64), default=None)
    created: Mapped[str] = mapped_column(String(32), default="")
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    vm: Mapped[Vm] = relationship()


class Template(Base):
    __tablename__ = "templates"
    __table_args__ = (UniqueConstraint("host_id", "name"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    host_id: Mapped[int] = mapped_column(ForeignKey("hosts.id", ondelete="CASCADE"),
                                         index=True)
    name: Mapped[str] = mapped_column(String(128))
    virtual_size: Mapped[int] = mapped_column(BigInteger, default=0)
    allocation: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    host: Mapped[Host] = relationship()


class Task(Base):
    __tablename__ = "tasks"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(64))          # e.g. vm.create, container.stop
    object_type: Mapped[str] = mapped_column(String(16))   # host | vm | container | template
    object_name: Mapped[str] = mapped_column(String(512))  # host/vm[/container]
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    state: Mapped[str] = mapped_column(String(16), index=True, default="queued")
    progress: Mapped[int] = mapped_column(Integer, default=0)
    message: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    cancellable: Mapped[bool] = mapped_column(Boolean, default=False)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    created_by: Mapped[str] = mapped_column(String(64))
    claimed_by: Mapped[str | None] = mapped_column(String(64), default=None)
    pinned_to: Mapped[str | None] = mapped_column(String(64), default=None)  # instance
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    started_at: Mapped[dt.datetime | None] = mapped_column(default=None)
    finished_at: Mapped[dt.datetime | None] = mapped_column(default=None)


class Event(Base):
    __tablename__ = "events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # the SSE event id
    at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(32))          # vm.state, task.progress, ...
    object_type: Mapped[str] = mapped_column(String(16))
    object_name: Mapped[str] = mapped_column(String(512))
    data: Mapped[dict[str, Any]] = mapped_column(default=dict)


class AuditEntry(Base):
    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(default=utcnow, index=True)
    user: Mapped[str] = mapped_column(String(64), index=True)
    action: Mapped[str] = mapped_column(String(64))        # vm.start, user.add, login, ...
    object_type: Mapped[str] = mapped_column(String(16))
    object_name: Mapped[str] = mapped_column(String(512))
    outcome: Mapped[str] = mapped_column(String(16))       # accepted | succeeded | denied | ...
    status_code: Mapped[int] = mapped_column(Integer)
    detail: Mapped[str] = mapped_column(Text, default="")
    address: Mapped[str | None] = mapped_column(String(64), default=None)  # the client's
    # How many requests the row stands for: 1, but for the row counting unauthenticated
    # clients' refused requests past their budget (inventory.audit.NoiseBudget).
    count: Mapped[int] = mapped_column(Integer, default=1, server_default="1")


# Rows made one by one (the sync, tests) get their sort key here; bulk inserts give their own.
@sa_event.listens_for(Vm, "before_insert")
def _vm_sort_key(_mapper: Any, connection: Connection, vm: Vm) -> None:
    if not vm.sort_key:
        host = connection.scalar(select(Host.name).where(Host.id == vm.host_id))
        vm.sort_key = sort_key(host or "", vm.name)


@sa_event.listens_for(Container, "before_insert")
def _container_sort_key(_mapper: Any, connection: Connection, container: Container) -> None:
    if not container.sort_key:
        vm = connection.scalar(select(Vm.sort_key).where(Vm.id == container.vm_id))
        container.sort_key = sort_key(vm or "", container.name)

