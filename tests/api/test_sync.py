"""The inventory converges to the truth on the real libvirtd: a domain changed behind
glasspane's back with libvirt itself (what virsh does), a host that becomes unreachable (marked,
its VMs kept) and comes back, and a restart of glasspane (a new process, the same database)."""

from __future__ import annotations

import libvirt
import pytest
from sqlalchemy import select

from glasspane.hosts.registry import HostRecord, HostRegistry
from glasspane.inventory.db import Database
from glasspane.inventory.models import Event, Host, Vm
from glasspane.inventory.sync import sync_hosts
from glasspane.settings import Settings

pytestmark = pytest.mark.integration


def vm_state(database: Database, host: str, name: str) -> str | None:
    with database.session() as session:
        vm = session.scalar(select(Vm).join(Host).where(Host.name == host, Vm.name == name))
        return vm.power_state if vm else None


def events_for(database: Database, name: str) -> list[str]:
    with database.session() as session:
        return [e.kind for e in session.scalars(select(Event).where(
            Event.object_name == f"local/{name}").order_by(Event.id))]


def test_changes_behind_glasspanes_back(settings: Settings, database: Database,
                                        domain: libvirt.virDomain) -> None:
    name = domain.name()
    sync_hosts(database, settings)
    assert vm_state(database, "local", name) == "running"
    domain.suspend()
    sync_hosts(database, settings)
    assert vm_state(database, "local", name) == "paused"
    domain.resume()
    domain.destroy()
    sync_hosts(database, settings)
    assert vm_state(database, "local", name) == "halted"
    domain.undefine()
    sync_hosts(database, settings)
    assert vm_state(database, "local", name) is None
    assert events_for(database, name) == ["vm.added", "vm.state", "vm.state", "vm.removed"]


def test_unreachable_host_is_marked_not_dropped_and_comes_back(
        settings: Settings, database: Database, domain: libvirt.virDomain) -> None:
    registry = HostRegistry(settings, database)
    # Another name for the same libvirtd, reached through the remote driver's unix transport.
    good = "qemu+unix:///system"
    registry.add(HostRecord("far", good))
    sync_hosts(database, settings)
    assert vm_state(database, "far", domain.name()) == "running"

    registry.remove("far")
    registry.add(HostRecord("far", "qemu+ssh://nobody@127.0.0.1:1/system"))  # refused at once
    sync_hosts(database, settings)
    with database.session() as session:
        far = session.scalar(select(Host).where(Host.name == "far"))
        assert far is not None and far.state == "unreachable"
        assert far.error and "127.0.0.1:1" in far.error
    assert vm_state(database, "far", domain.name()) == "running"  # kept, as last seen

    registry.remove("far")
    registry.add(HostRecord("far", good))
    domain.suspend()
    sync_hosts(database, settings)
    with database.session() as session:
        far = session.scalar(select(Host).where(Host.name == "far"))
        assert far is not None and far.state == "ok" and far.error is None
    assert vm_state(database, "far", domain.name()) == "paused"


def test_a_restarted_glasspane_converges_without_duplicates(
        settings: Settings, database: Database, database_url: str,
        domain: libvirt.virDomain) -> None:
    sync_hosts(database, settings)
    domain.suspend()  # changed while glasspane is down
    restarted = Database.open(settings, database_url)
    try:
        sync_hosts(restarted, settings)
        with restarted.session() as session:
            rows = list(session.scalars(select(Vm).where(Vm.name == domain.name())))
        assert len(rows) == 1 and rows[0].power_state == "paused"
    finally:
        restarted.close()


def test_lifecycle_events_update_the_inventory_between_polls(
        settings: Settings, database: Database, domain: libvirt.virDomain) -> None:
    import time

    from glasspane.inventory.sync import Syncer
    syncer = Syncer(database, settings, interval=3600, container_interval=3600)
    syncer.start()
    try:
        deadline = time.monotonic() + 30
        while vm_state(database, "local", domain.name()) != "running":
            assert time.monotonic() < deadline, "the first pass did not happen"
            time.sleep(0.2)
        assert syncer.watcher.watching("local")
        domain.suspend()  # the next poll is an hour away: only the event can tell
        deadline = time.monotonic() + 15
        while vm_state(database, "local", domain.name()) != "paused":
            assert time.monotonic() < deadline, "the lifecycle event did not arrive"
            time.sleep(0.2)
    finally:
        syncer.stop()
