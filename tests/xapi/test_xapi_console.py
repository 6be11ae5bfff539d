"""A XenServer VM's screen against the loopback XAPI: the console's location, XAPI's
`CONNECT /console?...&session_id=...` and then RFB, over plain HTTP and over TLS with the
pool's pinned certificate, and through the served API's WebSocket; a halted VM and the serial
console XAPI does not have are refused by name."""

from __future__ import annotations

import socket
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from websockets.sync.client import connect

from glasspane.enums import ConsoleKind
from glasspane.errors import Conflict
from glasspane.hypervisors import xapi_http
from glasspane.inventory.db import Database
from glasspane.settings import Settings
from glasspane.vms.consoles import open_console
from tests.api.conftest import app, login, serve
from tests.api.rfb import Stream, frame, handshake
from tests.api.test_api import add_vm
from tests.cli.runner import run_cli
from tests.xapi.server import Running, Xapi, self_signed, small_pool, start

__all__ = ["app"]  # the API's fixture, used here


def add_pool(capsys: pytest.CaptureFixture[str], url: str, password_file: Path,
             *extra: str) -> None:
    r = run_cli(capsys, "host", "add", "xcp", url, "--driver", "xenapi", "--user", "root",
                "--password-file", str(password_file), *extra)
    assert r.code == 0, r.err


def screen_of(sock: socket.socket) -> tuple[int, int, bytes]:
    sock.settimeout(30)
    stream = Stream(lambda: sock.recv(65536), sock.sendall)
    init = handshake(stream)
    return init.width, init.height, frame(stream, init)


def test_the_screen_is_xapis_console_location_connected(
        capsys: pytest.CaptureFixture[str], settings: Settings, xapi: Running,
        password_file: Path) -> None:
    add_pool(capsys, xapi.url, password_file)
    channel = open_console(settings, "web-1", "xcp", ConsoleKind.VNC)
    try:
        width, height, pixels = screen_of(channel.sock)
    finally:
        channel.close()
    assert (width, height) == (640, 480) and any(pixels)
    assert "CONNECT /console" in xapi.xapi.calls
    with pytest.raises(Conflict, match="VM db-1 on host xcp is halted: its screen is there "
                                       "only while it runs"):
        open_console(settings, "db-1", "xcp", ConsoleKind.VNC)
    with pytest.raises(Conflict, match="gives no serial console for VM web-1"):
        open_console(settings, "web-1", "xcp", ConsoleKind.SERIAL)
    # The session is the console's credential: XAPI refuses a CONNECT without a live one.
    [console] = xapi.xapi.objects["console"].values()
    with pytest.raises(xapi_http.HttpFailure) as refused:
        xapi_http.connect(f"{xapi.url}/console?uuid={console['uuid']}&session_id=OpaqueRef:x",
                          lambda _: xapi_http.Peer(None))
    assert refused.value.status == 401


def test_the_screen_over_tls_trusts_the_pinned_certificate(
        capsys: pytest.CaptureFixture[str], settings: Settings, password_file: Path,
        tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    running = start(Xapi(password="s3cret-pool"), tls=(cert, key))
    small_pool(running.xapi)
    try:
        add_pool(capsys, running.url, password_file, "--ca-file", str(cert))
        channel = open_console(settings, "web-1", "xcp", ConsoleKind.VNC)
        try:
            assert any(screen_of(channel.sock)[2])
        finally:
            channel.close()
    finally:
        running.stop()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_screen_through_the_api(capsys: pytest.CaptureFixture[str], app: FastAPI,
                                    database: Database, xapi: Running,
                                    password_file: Path) -> None:
    add_pool(capsys, xapi.url, password_file)
    add_vm(database, "web-1", "running", host_name="xcp")
    server = serve(app)
    try:
        otto = login(httpx.Client(base_url=server.url), "otto")
        issued = httpx.post(f"{server.url}/api/v1/vms/xcp/web-1/console/tickets",
                            headers=otto, json={"kind": "vnc"}).json()
        url = f"{server.url.replace('http', 'ws', 1)}{issued['url']}?ticket={issued['ticket']}"
        with connect(url, additional_headers=otto, open_timeout=30) as ws:
            stream = Stream(lambda: bytes(ws.recv(timeout=30)), ws.send)
            init = handshake(stream)
            assert init.name == b"web-1"
            assert any(frame(stream, init))
    finally:
        server.stop()
