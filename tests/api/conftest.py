"""The API against both databases it supports: SQLite in the test's directory and a fresh
PostgreSQL database per test on the loopback server `make test` starts (scripts/
ensure-postgres).  Servers run for real (uvicorn on a free port) where the test needs what
only a real server does: streaming events, two instances at once."""

from __future__ import annotations

import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import libvirt
import psycopg
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from glasspane.api.app import create_app
from glasspane.api.transport import server_config
from glasspane.inventory.db import Database
from glasspane.inventory.users import add_user
from glasspane.settings import Settings
from tests.hypervisors.conftest import URI, isolate, release
from tests.waiting import wait_for

PG_ADMIN = os.environ.get("GLASSPANE_TEST_PG",
                          "postgresql://glasspane:glasspane@127.0.0.1:5432/postgres")
PASSWORDS = {"ada": "admin-password", "otto": "operator-password", "vera": "viewer-password"}
ROLES = {"ada": "admin", "otto": "operator", "vera": "viewer"}


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    runtime = isolate(monkeypatch, tmp_path)
    yield Settings.load()
    release(runtime)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'inventory.db'}"
        return
    name = f"gp_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL does not answer ({exc}): `make test` starts it")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    yield PG_ADMIN.replace("postgresql://", "postgresql+psycopg://").rsplit("/", 1)[0] + \
        f"/{name}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        def dropped() -> bool:
            try:
                admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except psycopg.errors.InsufficientPrivilege:
                # A backend of another role is in it (autovacuum's worker, which this role
                # may not end): dropped once that one has gone.
                return False
            return True
        wait_for(dropped, f"database {name} dropped")


@pytest.fixture
def database(database_url: str, settings: Settings,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    # The registered hosts are in this database: the CLI run in the test finds it too.
    monkeypatch.setenv("GLASSPANE_DATABASE_URL", database_url)
    db = Database.open(settings, database_url)
    with db.session() as session:
        for name, role in ROLES.items():
            add_user(session, name, PASSWORDS[name], role)
    yield db
    db.close()


@pytest.fixture
def app(settings: Settings, database: Database) -> FastAPI:
    return create_app(settings, database, background=False)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def login(client: TestClient | httpx.Client, name: str) -> dict[str, str]:
    response = client.post("/api/v1/auth/login",
                           json={"name": name, "password": PASSWORDS[name]})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


@dataclass
class Server:
    url: str
    app: FastAPI
    server: uvicorn.Server
    thread: threading.Thread

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=20)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve(app: FastAPI, tls: tuple[Path, Path] | None = None) -> Server:
    """`app` on a free port of the loopback, over HTTPS with `tls` (certificate, key)."""
    port = free_port()
    # The product's own transport and settings (its limits, no proxy believed).
    cert, key = tls or (None, None)
    server = uvicorn.Server(server_config(app, "127.0.0.1", port, tls_cert=cert,
                                          tls_key=key))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    return Server(f"{'https' if tls else 'http'}://127.0.0.1:{port}", app, server, thread)


def read_events(url: str, headers: dict[str, str], until: Any, timeout: float = 30,
                start: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Events from the SSE stream until `until(events)` is true."""
    import json
    events: list[dict[str, Any]] = []
    with httpx.stream("GET", f"{url}/api/v1/events", headers={**headers, **(start or {})},
                      timeout=timeout) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        current: dict[str, Any] = {}
        for line in response.iter_lines():
            if line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("data: "):
                current.update(json.loads(line[6:]))
            elif line == "" and "kind" in current:
                events.append(current)
                current = {}
                if until(events):
                    break
    return events


# A domain with no disk: it runs (the firmware looks for something to boot) and costs nothing.
DOMAIN = """<domain type='qemu'>
  <name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><graphics type='vnc' autoport='yes' listen='127.0.0.1'/></devices>
</domain>"""


@pytest.fixture
def domain() -> Iterator[libvirt.virDomain]:
    conn = libvirt.open(URI)
    name = f"gp-sync-{uuid.uuid4().hex[:8]}"
    dom = conn.defineXML(DOMAIN.format(name=name))
    dom.create()
    yield dom
    try:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    except libvirt.libvirtError:
        pass
    conn.close()
