"""The consoles' WebSockets on a served API with a real running VM (no disk: its firmware
draws the screen and it costs next to nothing): the screen completes an RFB handshake and
sends a frame that is not blank, through the relay; each socket needs an operator's session
and a one-time ticket for that user, VM and console; a VM that stops closes its sockets
cleanly; opening and closing are audited."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import libvirt
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from glasspane.inventory.db import Database
from glasspane.inventory.models import AuditEntry
from glasspane.vms import console_tickets
from tests.api.conftest import Server, login, serve
from tests.api.rfb import Stream, frame, handshake
from tests.api.test_api import add_vm
from tests.hypervisors.conftest import URI
from tests.waiting import wait_for

API = "/api/v1"
# What glasspane gives a VM for its consoles (libvirt_domain.with_consoles), on a VM that
# boots nothing.
DOMAIN = """<domain type='qemu'>
  <name>{name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <serial type='pty'><target port='0'/></serial>
    <graphics type='vnc'><listen type='socket'/></graphics>
    <video><model type='virtio'/></video>
  </devices>
</domain>"""


@pytest.fixture
def vm(database: Database) -> Iterator[libvirt.virDomain]:
    conn = libvirt.open(URI)
    dom = conn.defineXML(DOMAIN.format(name=f"gp-console-{uuid.uuid4().hex[:8]}"))
    dom.create()
    add_vm(database, dom.name(), "running")
    yield dom
    try:
        if dom.isActive():
            dom.destroy()
        dom.undefine()
    except libvirt.libvirtError:
        pass
    conn.close()


@pytest.fixture
def server(app: FastAPI) -> Iterator[Server]:
    running = serve(app)
    yield running
    running.stop()


def ticket(server: Server, headers: dict[str, str], vm: str, kind: str) -> dict[str, Any]:
    response = httpx.post(f"{server.url}{API}/vms/local/{vm}/console/tickets",
                          headers=headers, json={"kind": kind})
    assert response.status_code == 200, response.text
    return dict(response.json())


def socket_url(server: Server, issued: dict[str, Any]) -> str:
    return f"{server.url.replace('http', 'ws', 1)}{issued['url']}?ticket={issued['ticket']}"


def opened(server: Server, headers: dict[str, str], vm: str, kind: str) -> ClientConnection:
    return connect(socket_url(server, ticket(server, headers, vm, kind)),
                   additional_headers=headers, open_timeout=20)


def refused(url: str, headers: dict[str, str]) -> tuple[int, str]:
    with pytest.raises(InvalidStatus) as exc:
        connect(url, additional_headers=headers, open_timeout=20)
    response = exc.value.response
    return response.status_code, response.body.decode() if response.body else ""


def audited(database: Database) -> list[tuple[str, str, int, str]]:
    with database.session() as session:
        return [(e.user, e.action, e.status_code, e.detail)
                for e in session.scalars(select(AuditEntry).order_by(AuditEntry.id))]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_screen_relays_rfb_and_draws_a_frame(server: Server, vm: libvirt.virDomain,
                                                  database: Database) -> None:
    otto = login(httpx.Client(base_url=server.url), "otto")
    with opened(server, otto, vm.name(), "vnc") as ws:
        stream = Stream(lambda: bytes(ws.recv(timeout=30)), ws.send)
        init = handshake(stream)
        assert init.width >= 640 and init.height >= 200, init
        # The firmware writes on the screen within moments of the start: wait for it.
        pixels = [b""]

        def drawn() -> bool:
            pixels[0] = frame(stream, init)
            return any(pixels[0])
        wait_for(drawn, "a frame that is not blank")
        assert len(pixels[0]) == init.width * init.height * init.bits_per_pixel // 8
    wait_for(lambda: any(a[1] == "console.close" for a in audited(database)),
             "the console's closing in the audit log")
    entries = audited(database)
    assert ("otto", "console.ticket", 200, "vnc") in entries
    assert ("otto", "console.open", 101, "vnc") in entries
    [closed] = [e for e in entries if e[1] == "console.close"]
    assert closed[0] == "otto" and closed[3].startswith("vnc: the client closed it")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_vm_that_stops_closes_its_console_sockets_cleanly(
        server: Server, vm: libvirt.virDomain, database: Database) -> None:
    otto = login(httpx.Client(base_url=server.url), "otto")
    with opened(server, otto, vm.name(), "serial") as serial, \
            opened(server, otto, vm.name(), "vnc") as screen:
        assert bytes(screen.recv(timeout=30)).startswith(b"RFB 003.")
        vm.destroy()
        for ws in (serial, screen):
            with pytest.raises(ConnectionClosed) as exc:
                while True:
                    ws.recv(timeout=30)
            assert exc.value.rcvd is not None and exc.value.rcvd.code == 1000
            assert "the console ended" in exc.value.rcvd.reason
    wait_for(lambda: sum(a[1] == "console.close" for a in audited(database)) == 2,
             "both closings in the audit log")


def test_console_sockets_refuse_whoever_may_not_open_them(
        server: Server, vm: libvirt.virDomain, database: Database,
        monkeypatch: pytest.MonkeyPatch) -> None:
    client = httpx.Client(base_url=server.url)
    otto, vera, ada = (login(client, name) for name in ("otto", "vera", "ada"))
    name = vm.name()
    # A viewer gets no ticket, and no socket with someone else's.
    asked = client.post(f"{API}/vms/local/{name}/console/tickets", headers=vera,
                        json={"kind": "serial"})
    assert asked.status_code == 403 and "needs operator" in asked.text
    status, body = refused(socket_url(server, ticket(server, otto, name, "serial")), vera)
    assert status == 403 and "a console needs operator" in body
    # No session at all, with a good ticket.
    status, body = refused(socket_url(server, ticket(server, otto, name, "serial")), {})
    assert status == 401 and "authentication required" in body
    # Another user's ticket.
    status, body = refused(socket_url(server, ticket(server, ada, name, "serial")), otto)
    assert status == 401 and "issued to another user" in body
    # A ticket for the other console.
    status, body = refused(socket_url(server, ticket(server, otto, name, "vnc")).replace(
        "/console/vnc", "/console/serial"), otto)
    assert status == 401 and f"for the vnc console of VM {name}" in body
    # A ticket used twice: the second socket is refused.
    issued = ticket(server, otto, name, "serial")
    with connect(socket_url(server, issued), additional_headers=otto, open_timeout=20):
        status, body = refused(socket_url(server, issued), otto)
    assert status == 401 and "unknown or already used" in body
    # An expired ticket: issued, then presented past its minute.
    issued = ticket(server, otto, name, "serial")
    later = console_tickets.TICKETS._clock() + console_tickets.TTL + 1
    monkeypatch.setattr(console_tickets.TICKETS, "_clock", lambda: later)
    status, body = refused(socket_url(server, issued), otto)
    assert status == 401 and "expired" in body
    monkeypatch.undo()
    # No ticket; a console there is not.
    base = f"{server.url.replace('http', 'ws', 1)}{API}/vms/local/{name}/console"
    assert refused(f"{base}/serial", otto)[0] == 401
    assert refused(f"{base}/spice?ticket=x", otto)[0] == 404
    # The page's cookie from another origin (cross-site WebSocket hijacking).
    cookie = {"Cookie": f"glasspane_token={otto['Authorization'][7:]}",
              "Origin": "https://evil.example"}
    status, body = refused(socket_url(server, ticket(server, otto, name, "serial")), cookie)
    assert status == 403 and "origin" in body
    refusals = [a for a in audited(database) if a[1] == "console.open" and a[2] >= 400]
    assert {(a[0], a[2]) for a in refusals} >= {("vera", 403), ("otto", 401),
                                                ("anonymous", 401)}


def test_a_halted_vm_gets_no_ticket(server: Server, database: Database) -> None:
    add_vm(database, "stopped-1", "halted")
    client = httpx.Client(base_url=server.url)
    response = client.post(f"{API}/vms/local/stopped-1/console/tickets",
                           headers=login(client, "otto"), json={"kind": "vnc"})
    assert response.status_code == 409
    assert "ticket needs it running or paused" in response.json()["detail"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_cli_through_the_server_leaves_with_ctrl_bracket_and_ends_with_the_vm(
        server: Server, vm: libvirt.virDomain) -> None:
    import os
    import subprocess
    import sys
    token = login(httpx.Client(base_url=server.url), "otto")["Authorization"][7:]
    env = {**os.environ, "GLASSPANE_TOKEN": token}
    args = [sys.executable, "-m", "glasspane.cli.main", "--server", server.url, "vm",
            "console", vm.name()]
    left = subprocess.run(args, input=b"typed\n\x1d", capture_output=True, env=env,
                          timeout=60)
    assert left.returncode == 0, left.stderr
    assert left.stderr.decode().strip() == f"left the serial console of VM {vm.name()}"
    # Attached, until the VM stops: the attachment ends, saying so.
    attached = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env)
    wait_for(lambda: sum(a[1] == "console.open" and a[2] == 101
                         for a in audited(server.app.state.services.database)) == 2,
             "the CLI's second console to open")
    vm.destroy()
    assert attached.wait(timeout=60) == 0  # its input still open: the VM ended it
    assert attached.stderr is not None
    err = attached.stderr.read().decode()
    for pipe in (attached.stdin, attached.stdout, attached.stderr):
        if pipe is not None:
            pipe.close()
    assert f"the serial console of VM {vm.name()} ended (the VM stopped" in err
    # A viewer's CLI is refused in one line.
    vera = login(httpx.Client(base_url=server.url), "vera")["Authorization"][7:]
    refused = subprocess.run(args, input=b"", capture_output=True, timeout=60,
                             env={**env, "GLASSPANE_TOKEN": vera})
    assert refused.returncode != 0
    assert refused.stderr.decode().strip().splitlines()[0].endswith("this needs operator")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_second_serial_session_takes_the_console_from_the_first(
        server: Server, vm: libvirt.virDomain) -> None:
    otto = login(httpx.Client(base_url=server.url), "otto")
    with opened(server, otto, vm.name(), "serial") as first, \
            opened(server, otto, vm.name(), "serial") as second:
        with pytest.raises(ConnectionClosed) as exc:
            while True:
                first.recv(timeout=30)
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 1000
        assert "another session took it" in exc.value.rcvd.reason
        second.send(b"\r")  # the second one holds it now


def test_the_tickets_socket_path_escapes_the_hypervisors_names() -> None:
    """A VM's name is the hypervisor's (a XenServer VM may be `db 1?x#y`): the path the ticket
    gives escapes it, so the CLI that follows it reaches that VM's socket."""
    from glasspane.enums import ConsoleKind
    from glasspane.operations.consoles import socket_path
    assert socket_path("xcp", "db 1?x#y", ConsoleKind.VNC) == \
        "/api/v1/vms/xcp/db%201%3Fx%23y/console/vnc"
