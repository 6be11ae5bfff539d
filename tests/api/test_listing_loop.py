"""The inventory listings read the database off the event loop: while a listing waits on
its database read (a slow disk, a distant PostgreSQL, a page of 1,000 rows), the served
application goes on answering, and the live event stream goes on delivering events."""

from __future__ import annotations

import threading
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import event, select

from glasspane.inventory.db import Database
from glasspane.inventory.events import latest_event_id, publish
from glasspane.inventory.models import Container, Host, Vm
from tests.api.conftest import login, read_events, serve

API = "/api/v1"
WAIT = 30  # seconds before a state that should come is taken as never coming


def add_inventory(database: Database) -> None:
    with database.session() as session:
        host = Host(name="local", uri="qemu:///system", driver="libvirt", state="ok")
        session.add(host)
        session.flush()
        vm = Vm(host_id=host.id, name="web-1", uuid="web-1", power_state="running")
        session.add(vm)
        session.flush()
        session.add(Container(vm_id=vm.id, engine_id="c0ffee", name="app", image="app:1",
                              state="running"))


class HeldReads:
    """Holds the statements on the VMs table (those containing `marker`: the first `limit` of
    them, or every one), from the moment it is armed, until released; counts them, and sets
    `holding` at the first: listings caught in their database reads."""

    def __init__(self, database: Database, marker: str = " vms", limit: int | None = None
                 ) -> None:
        self.engine = database.engine
        self.marker, self.limit = marker, limit
        self.armed = False
        self.held = 0
        self.lock = threading.Lock()
        self.holding = threading.Event()
        self.released = threading.Event()

    def __enter__(self) -> HeldReads:
        event.listen(self.engine, "before_cursor_execute", self._hold)
        return self

    def __exit__(self, *_: object) -> None:
        self.released.set()
        event.remove(self.engine, "before_cursor_execute", self._hold)

    def _hold(self, _conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if not self.armed or self.marker not in statement or self.released.is_set():
            return
        with self.lock:
            if self.limit is not None and self.held >= self.limit:
                return
            self.held += 1
        self.holding.set()
        self.released.wait(WAIT)


@pytest.mark.timeout(120)
def test_events_flow_while_a_listing_is_held_in_its_database_read(
        app: FastAPI, database: Database) -> None:
    add_inventory(database)
    server = serve(app)
    answers: list[httpx.Response] = []
    try:
        headers = login(httpx.Client(base_url=server.url), "vera")
        with database.session() as session:
            before = latest_event_id(session)
        with HeldReads(database, limit=1) as held:
            held.armed = True
            listing = threading.Thread(target=lambda: answers.append(httpx.get(
                f"{server.url}{API}/vms?limit=1000", headers=headers, timeout=WAIT)))
            listing.start()
            assert held.holding.wait(WAIT), "the listing never reached the database"

            with database.session() as session:
                publish(session, "host.state", "host", "local", state="ok")
            try:
                seen = read_events(server.url, headers,
                                   lambda got: any(e["kind"] == "host.state" for e in got),
                                   timeout=WAIT / 3, start={"Last-Event-ID": str(before)})
            except httpx.TimeoutException:
                pytest.fail("no event while a listing was reading the database: the listing "
                            "holds the event loop")
            assert [e["object_name"] for e in seen] == ["local"]
            # Delivered while the listing was still in its read, and other requests answer.
            assert listing.is_alive() and not answers
            assert httpx.get(f"{server.url}{API}/auth/me", headers=headers,
                             timeout=WAIT / 3).json()["name"] == "vera"

            held.released.set()
            listing.join(WAIT)
        assert not listing.is_alive()
        assert answers[0].status_code == 200, answers[0].text
        body = answers[0].json()
        assert body["total"] == 1 and body["limit"] == 1000
        assert [(v["host"], v["name"], v["container_count"]) for v in body["items"]] == \
            [("local", "web-1", 1)]
        with database.session() as session:
            assert session.scalar(select(Vm.name)) == "web-1"
    finally:
        server.stop()


def test_totals_are_right_from_whichever_page_is_seen_first(app: FastAPI,
                                                            database: Database) -> None:
    """A page short of its limit ends the listing and gives the total without a count; a
    full page, or an empty one past the start, counts.  Each case is a search of its own,
    so each is the first page of its listing seen (totals are kept per listing)."""
    add_inventory(database)
    with database.session() as session:
        host_id = session.scalar(select(Host.id))
        session.add_all([Vm(host_id=host_id, name=f"web-{i}", uuid=f"web-{i}",
                            power_state="halted") for i in (2, 3)])
    with TestClient(app) as client:
        headers = login(client, "vera")
        for q, offset, limit, names in (("web", 0, 2, ["web-1", "web-2"]),   # full: counted
                                        ("we", 2, 2, ["web-3"]),             # short: the end
                                        ("eb", 1, 5, ["web-2", "web-3"]),    # short: the end
                                        ("b-", 5, 2, []),                    # empty, past it
                                        ("-", 3, 2, []),                     # empty, at it
                                        ("web-", 0, 3, ["web-1", "web-2", "web-3"])):
            body = client.get(f"{API}/vms", headers=headers,
                              params={"q": q, "offset": offset, "limit": limit}).json()
            assert [v["name"] for v in body["items"]] == names, q
            assert body["total"] == 3, (q, body)
        missing = client.get(f"{API}/vms", headers=headers, params={"q": "nothing"}).json()
        assert missing["total"] == 0 and missing["items"] == []
        hosts = client.get(f"{API}/hosts", headers=headers, params={"limit": 1}).json()
        assert hosts["total"] == 1 and hosts["items"][0]["vm_count"] == 3
