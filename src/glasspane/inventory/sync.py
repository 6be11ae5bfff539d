"""Keeping the inventory true: hosts, their VMs and templates from the drivers, containers from
the VMs' engines over the kept SSH connections.  Each pass compares what it sees with what the
database holds and writes only the differences, each as an event.  A host that cannot be
reached is marked unreachable and keeps its VMs (shown as last seen), never deleted; a VM whose
engine cannot be asked keeps its containers, with the error beside them."""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from glasspane.containers.service import ContainerRow, VmFailure, kept_engine, list_on
from glasspane.enums import PowerState
from glasspane.errors import GuestError
from glasspane.guests.access import ssh_target
from glasspane.hosts.registry import HostRecord, HostRegistry, registered
from glasspane.hosts.service import host_driver
from glasspane.hypervisors import declared
from glasspane.hypervisors.base import ip_addresses
from glasspane.hypervisors.capabilities import Capability, ContainerKeys, Driver, require
from glasspane.hypervisors.uris import redacted, without_secrets
from glasspane.inventory.db import Database
from glasspane.inventory.events import publish
from glasspane.inventory.models import Container, Host, Template, Vm, utcnow
from glasspane.settings import Settings
from glasspane.templates.service import templates_on

log = logging.getLogger("glasspane.sync")
T = TypeVar("T")
# Held while a host's rows are written and while a host is forgotten, so that a pass that
# looked at a host just removed cannot write its row back.
hosts_lock = threading.Lock()


def _host_row(session: Session, record: HostRecord, settings: Settings) -> Host | None:
    """The host's row, made if it has none yet, unless the host was removed from the
    registry while this pass was looking at it (the pass must not bring it back)."""
    host = session.scalar(select(Host).where(Host.name == record.name))
    if host is None:
        if not registered(session, record.name):
            return None
        # The inventory and its events are for every user: never the URI's password, and
        # the query (the admins' business) not in the event either.
        host = Host(name=record.name, uri=redacted(record.uri, query=True),
                    driver=record.driver)
        session.add(host)
        session.flush()
        publish(session, "host.added", "host", record.name,
                uri=redacted(record.uri, query=False))
    return host


def register_hosts(database: Database, settings: Settings) -> None:
    """A row (state unknown until a pass has looked) for every host in the registry, before
    the server answers: a request naming a registered host must not depend on the first
    pass, which may take long (a host slow to answer, the first acceleration probe)."""
    for record in HostRegistry(settings, database).all():
        try:
            with database.session() as session:
                _host_row(session, record, settings)
        except IntegrityError:  # another instance sharing the database made it meanwhile
            continue


def sync_hosts(database: Database, settings: Settings) -> None:
    """One pass over every registered host (and forget hosts no longer registered)."""
    records = HostRegistry(settings, database).all()
    for record in records:
        sync_host(database, settings, record)
    with database.session() as session:
        names = {r.name for r in records}
        for host in session.scalars(select(Host)):
            if host.name not in names:
                session.delete(host)
                publish(session, "host.removed", "host", host.name)


NAME_SIZE = 128  # the inventory's VM and template names


def nameable(found: list[T], name_of: Callable[[T], str], kind: str, host: str) -> list[T]:
    """The objects of `found` glasspane can name: on a XenServer pool any number of VMs or
    templates may share a name, of any length, and glasspane finds them by name (a shared
    one would make it act on the wrong one; the driver refuses it).  The others are left out
    of the inventory, said in the log, rather than fail the host's whole pass."""
    count = Counter(name_of(o) for o in found)
    kept, said = [], set()
    for item in found:
        name = name_of(item)
        if count[name] > 1:
            if name not in said:
                log.warning("host %s: %d %ss are named %r: left out of the inventory until "
                            "all but one are renamed", host, count[name], kind, name[:200])
                said.add(name)
        elif len(name) > NAME_SIZE or "\0" in name:
            log.warning("host %s: a %s's name of %d characters is left out of the inventory "
                        "(at most %d, no NUL): %r", host, kind, len(name), NAME_SIZE,
                        name[:200])
        else:
            kept.append(item)
    return kept


def sync_host(database: Database, settings: Settings, record: HostRecord) -> None:
    try:
        with host_driver(settings, record.name) as driver:
            info = driver.host_info()
            seen = []
            for summary in nameable(driver.list_vms(), lambda v: v.name, "VM", record.name):
                # Guests report their addresses: a driver keeps only IP addresses, checked
                # again here since the inventory shows them and SSH and Ansible use them.
                addresses = ip_addresses(driver.vm_addresses(summary.name)) \
                    if summary.power_state == PowerState.RUNNING else []
                seen.append((summary, addresses))
            templates = nameable(templates_on(driver, settings, record.name),
                                 lambda t: t.name, "template", record.name)
    except Exception as exc:  # any failure to look: unreachable, with the reason
        reason = without_secrets(str(exc), record.uri)
        with hosts_lock, database.session() as session:
            host = _host_row(session, record, settings)
            if host is None:
                return
            if host.state != "unreachable" or host.error != reason:
                host.state, host.error, host.updated_at = "unreachable", reason, utcnow()
                publish(session, "host.state", "host", host.name, state="unreachable",
                        error=reason)
        return
    with hosts_lock, database.session() as session:
        host = _host_row(session, record, settings)
        if host is None:
            return
        host.last_seen = utcnow()
        if host.uri != redacted(record.uri, query=True):  # a row from before redaction
            host.uri = redacted(record.uri, query=True)
        host.info = {"hypervisor": info.hypervisor, "cpus": info.cpus,
                     "memory_mib": info.memory_mib, "acceleration": info.acceleration.kind,
                     "acceleration_reason": info.acceleration.reason,
                     "networks": [n.name for n in info.networks]}
        if host.state != "ok":
            host.state, host.error, host.updated_at = "ok", None, utcnow()
            publish(session, "host.state", "host", host.name, state="ok")
        _merge_vms(session, host, seen)
        _merge_templates(session, host, [(t.name, t.virtual_size, t.allocation)
                                         for t in templates])


def _merge_vms(session: Session, host: Host, seen: list[tuple[Any, list[str]]]) -> None:
    known = {vm.name: vm for vm in session.scalars(select(Vm).where(Vm.host_id == host.id))}
    for summary, addresses in seen:
        vm = known.pop(summary.name, None)
        if vm is None:
            vm = Vm(host_id=host.id, name=summary.name, uuid=summary.uuid,
                    power_state=summary.power_state, addresses=addresses,
                    template=summary.template, labels=summary.labels)
            session.add(vm)
            publish(session, "vm.added", "vm", f"{host.name}/{summary.name}",
                    power_state=summary.power_state, addresses=addresses)
            continue
        if vm.uuid != summary.uuid:  # same name, a new VM: its containers are not ours
            session.query(Container).filter(Container.vm_id == vm.id).delete()
            vm.uuid = summary.uuid
        if vm.template != summary.template or vm.labels != summary.labels:
            vm.template, vm.labels = summary.template, summary.labels
        if vm.power_state != summary.power_state or vm.addresses != addresses:
            vm.power_state, vm.addresses, vm.updated_at = (summary.power_state, addresses,
                                                           utcnow())
            publish(session, "vm.state", "vm", f"{host.name}/{summary.name}",
                    power_state=summary.power_state, addresses=addresses)
    for name, gone in known.items():
        session.delete(gone)
        publish(session, "vm.removed", "vm", f"{host.name}/{name}")


def _merge_templates(session: Session, host: Host, seen: list[tuple[str, int, int]]) -> None:
    known = {t.name: t for t in session.scalars(select(Template)
                                                .where(Template.host_id == host.id))}
    for name, size, allocation in seen:
        template = known.pop(name, None)
        if template is None:
            session.add(Template(host_id=host.id, name=name, virtual_size=size,
                                 allocation=allocation))
            publish(session, "template.added", "template", f"{host.name}/{name}")
        else:
            template.virtual_size, template.allocation = size, allocation
    for name, gone in known.items():
        session.delete(gone)
        publish(session, "template.removed", "template", f"{host.name}/{name}")


def sync_containers(database: Database, settings: Settings, timeout: float = 20) -> None:
    """Ask every running VM's engine (in parallel, over kept connections) for its
    containers.  Which VMs run and where is what the host pass just wrote: the hypervisors
    are not asked again.  VMs of unreachable hosts keep their containers as last seen."""
    targets, no_address = [], []
    with database.session() as session:
        for vm, host_name in session.execute(
                select(Vm, Host.name).join(Host).where(Vm.power_state == "running",
                                                       Host.state == "ok")):
            if vm.addresses:
                targets.append(ssh_target(settings, host_name, vm.name, vm.uuid,
                                          vm.addresses[0]))
            else:
                no_address.append(VmFailure(host_name, vm.name, str(GuestError(
                    "the VM has no address yet", host=host_name, vm=vm.name))))
    listing = list_on(settings, targets, all_=True, timeout=timeout)
    listing.failures += no_address
    by_vm: dict[tuple[str, str], list[ContainerRow]] = {}
    for row in listing.containers:
        by_vm.setdefault((row.host, row.vm), []).append(row)
    failed = {(f.host, f.vm): f.error for f in listing.failures if f.vm}
    with database.session() as session:
        for vm, host_name in session.execute(select(Vm, Host.name).join(Host)):
            key = (host_name, vm.name)
            if key in failed:
                if vm.containers_error != failed[key]:
                    vm.containers_error = failed[key]
                    publish(session, "vm.containers_error", "vm", f"{host_name}/{vm.name}",
                            error=failed[key])
                continue
            if vm.power_state != "running":
                continue
            vm.containers_error = None
            _merge_containers(session, host_name, vm, by_vm.get(key, []))


def _merge_containers(session: Session, host_name: str, vm: Vm, rows: list[ContainerRow]
                      ) -> None:
    known = {c.name: c for c in session.scalars(select(Container)
                                                .where(Container.vm_id == vm.id))}
    prefix = f"{host_name}/{vm.name}/"
    seen: set[str] = set()
    for row in rows:
        if row.name in seen:  # an engine (the guest's) may name two alike: the first counts
            continue
        seen.add(row.name)
        container = known.pop(row.name, None)
        if container is None:
            session.add(Container(vm_id=vm.id, engine_id=row.id, name=row.name,
                                  image=row.image, state=row.state, status=row.status,
                                  ports=row.ports, app=row.app, created=row.created))
            publish(session, "container.added", "container", prefix + row.name,
                    state=row.state, image=row.image)
            continue
        changed = (container.state, container.engine_id, container.ports, container.image) != \
            (row.state, row.id, row.ports, row.image)
        container.status = row.status
        if changed:
            container.state, container.engine_id = row.state, row.id
            container.ports, container.image, container.app = row.ports, row.image, row.app
            container.updated_at = utcnow()
            publish(session, "container.state", "container", prefix + row.name,
                    state=row.state)
    for name, gone in known.items():
        session.delete(gone)
        publish(session, "container.removed", "container", prefix + name)


def sync_xscontainer_keys(settings: Settings) -> int:
    """On XenServer pools, write each running VM's containers into the other_config keys
    XenCenter and Xen Orchestra read (xscontainer's); how many VMs were changed.  A VM that
    is not running, reports no address or whose engine does not answer has the keys cleared
    (as xscontainer did: no "Up" containers on a halted VM).  A pool that runs xscontainer
    itself is left to it (it wipes these keys on start and after each failure): said once."""
    from glasspane.containers.xscontainer import KEYS, to_write
    updated = 0
    for record in HostRegistry(settings).all():
        if Capability.CONTAINER_KEYS not in declared(record.driver):
            continue  # known without connecting: these passes run every few seconds
        try:
            with host_driver(settings, record.name) as connected:
                driver = require(connected, Capability.CONTAINER_KEYS,
                                 "writing the containers into the VMs' keys")
                if _xscontainer_on(driver, record.name):
                    continue
                for name, (state, uuid, current) in driver.other_configs().items():
                    values = _container_keys(settings, driver, record.name, name, uuid,
                                             state)
                    if values is None:  # nothing to show: nothing stale either
                        changed = driver.write_other_config(name, {}, remove=KEYS) \
                            if any(k in current for k in KEYS) else []
                    else:
                        values = to_write(current, values)
                        changed = driver.write_other_config(name, values) if values else []
                    updated += bool(changed)
        except Exception as exc:  # that host only
            log.info("xscontainer keys on %s: %s", record.name, exc)
    return updated


_XSCONTAINER_SAID: set[tuple[str, str, tuple[str, ...]]] = set()


def _xscontainer_on(driver: ContainerKeys, host: str) -> bool:
    """Whether the pool runs XenServer's own xscontainer; said once per pool and finding."""
    found = tuple(driver.xscontainer_hosts())
    if found and (host, driver.uri, found) not in _XSCONTAINER_SAID:
        _XSCONTAINER_SAID.add((host, driver.uri, found))
        log.warning("pool %s runs xscontainer (on %s): it owns the VMs' container keys and "
                    "wipes them, so glasspane does not write them", host, ", ".join(found))
    return bool(found)


def _container_keys(settings: Settings, driver: Driver, host: str, name: str, uuid: str,
                    state: PowerState) -> dict[str, str] | None:
    """The keys VM `name` should carry, or None when it is not running or does not answer."""
    from glasspane.containers.xscontainer import other_config
    if state != PowerState.RUNNING:
        return None
    try:
        addresses = ip_addresses(driver.vm_addresses(name))
        if not addresses:
            return None
        target = ssh_target(settings, host, name, uuid, addresses[0])
        with kept_engine(settings, target) as engine:
            # No size=1: SizeRw changes whenever a container writes (a write loop).
            return other_config(engine.json("GET", "/containers/json", params={"all": "1"}),
                                engine.json("GET", "/info"), engine.json("GET", "/version"))
    except Exception as exc:  # that VM only
        log.info("xscontainer keys for %s/%s: %s", host, name, exc)
        return None


class Syncer:
    """Background passes: hosts every `interval` s, containers every `container_interval`
    s; `poke()` runs a pass now (after an action)."""

    def __init__(self, database: Database, settings: Settings, interval: float = 10,
                 container_interval: float = 15) -> None:
        from glasspane.hypervisors.libvirt_events import LibvirtWatcher
        self.database, self.settings = database, settings
        # Lifecycle events make a pass run at once; the interval is then only the safety net.
        self.watcher = LibvirtWatcher(lambda host: self.poke())
        self._xapi_watchers: dict[str, Any] = {}
        self.interval, self.container_interval = interval, container_interval
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="glasspane-sync")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._poke.set()
        self._thread.join(timeout=30)
        self.watcher.close()
        for xapi_watcher in self._xapi_watchers.values():
            xapi_watcher.stop()

    def _watch_hosts(self) -> None:
        from glasspane.hosts.service import connect
        from glasspane.hypervisors.xenapi_driver import XapiWatcher
        for record in HostRegistry(self.settings, self.database).all():
            if record.driver == "libvirt":
                self.watcher.watch(record.name, record.uri)
            elif record.driver == "xenapi":
                current = self._xapi_watchers.get(record.name)
                if current is None or not current.alive():
                    def make(record: HostRecord = record) -> Driver:
                        return connect(record, self.settings)
                    self._xapi_watchers[record.name] = XapiWatcher(
                        record.name, make, lambda host: self.poke())

    def poke(self) -> None:
        self._poke.set()

    def _loop(self) -> None:
        last_containers = 0.0
        while not self._stop.is_set():
            poked = self._poke.is_set()
            self._poke.clear()  # before the pass: a poke during it asks for another one
            try:
                self._watch_hosts()
                sync_hosts(self.database, self.settings)
                if poked or time.monotonic() - last_containers >= self.container_interval:
                    sync_containers(self.database, self.settings)
                    sync_xscontainer_keys(self.settings)
                    last_containers = time.monotonic()
            except Exception:
                log.exception("inventory sync")
            self._poke.wait(self.interval)
