"""The consoles through the server, over loopback (`make bench-console`).

- keystroke to echo on the serial console of a real Debian VM (under TCG), through the API's
  WebSocket: one key at a time at its login prompt (a letter, then a backspace, so the line
  stays short), timed from the send to the guest's echo; target p95 under 50 ms;
- frames of a VM's screen, direct (the VNC socket libvirt hands us) and through the relay
  (ticket, WebSocket), paired: each round asks both for the same region, one after the other,
  in alternating order; the relay's added latency is the difference within each pair; target
  p95 under 5 ms.  A small region measures latency, the whole screen also what the relay adds
  per megabyte.

    .venv/bin/python benchmarks/console.py [--keys 200] [--frames 200]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import struct
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import httpx
import libvirt
import uvicorn
from sqlalchemy import select

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.api.rfb import ServerInit, Stream, handshake
from tests.xapi.server import Xapi, small_pool, start
from websockets.sync.client import ClientConnection, connect

from glasspane.api.app import create_app
from glasspane.api.transport import server_config
from glasspane.hosts.service import add_host
from glasspane.hypervisors import xapi_http
from glasspane.inventory.db import Database
from glasspane.inventory.models import Host, Vm
from glasspane.inventory.users import add_user
from glasspane.settings import Settings

PASSWORD = "bench-password"
GUEST = "bench-console"
SCREEN = """<domain type='qemu'><name>{name}</name><memory unit='MiB'>32</memory>
  <vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><graphics type='vnc'><listen type='socket'/></graphics>
  <video><model type='virtio'/></video></devices></domain>"""


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    cut = statistics.quantiles(ordered, n=100)
    return (f"p50 {cut[49] * 1000:.2f} ms, p95 {cut[94] * 1000:.2f} ms, "
            f"p99 {cut[98] * 1000:.2f} ms (n={len(ordered)})")


@contextmanager
def served(settings: Settings, vms: dict[str, list[str]]
           ) -> Iterator[tuple[str, dict[str, str]]]:
    """The API on a loopback port with an operator and the running VMs `vms` (by host); its
    URL and the operator's header."""
    database = Database.open(settings)  # where the hosts were registered
    with database.session() as session:
        add_user(session, "otto", PASSWORD, "operator")
        for host_name, names in vms.items():
            host = session.scalar(select(Host).where(Host.name == host_name))
            if host is None:
                host = Host(name=host_name, uri="", driver="", state="ok")
                session.add(host)
                session.flush()
            for name in names:
                session.add(Vm(host_id=host.id, name=name, uuid=name, power_state="running"))
    app = create_app(settings, database, background=False)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(server_config(app, "127.0.0.1", port))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    token = httpx.post(f"{url}/api/v1/auth/login",
                       json={"name": "otto", "password": PASSWORD}).json()["token"]
    try:
        yield url, {"Authorization": f"Bearer {token}"}
    finally:
        server.should_exit = True
        thread.join(timeout=20)
        database.close()


def open_socket(url: str, headers: dict[str, str], vm: str, kind: str,
                host: str = "local") -> ClientConnection:
    issued = httpx.post(f"{url}/api/v1/vms/{host}/{vm}/console/tickets", headers=headers,
                        json={"kind": kind}).json()
    return connect(f"{url.replace('http', 'ws', 1)}{issued['url']}?ticket={issued['ticket']}",
                   additional_headers=headers, max_size=None, compression=None)


def until(ws: ClientConnection, done: Callable[[bytes], bool], timeout: float = 120) -> bytes:
    seen = b""
    deadline = time.monotonic() + timeout
    while not done(seen):
        seen += bytes(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
    return seen


def keystrokes(url: str, headers: dict[str, str], count: int) -> list[float]:
    with open_socket(url, headers, GUEST, "serial") as ws:
        ws.send(b"\r")
        until(ws, lambda seen: b"login:" in seen)
        samples = []
        for i in range(count):
            key = b"x" if i % 2 == 0 else b"\x7f"
            started = time.perf_counter()
            ws.send(key)
            ws.recv(timeout=30)  # the echo: "x", or "\b \b" for the backspace
            samples.append(time.perf_counter() - started)
            # Whatever else of the echo is still coming is not the next key's.
            with suppress(TimeoutError):
                while True:
                    ws.recv(timeout=0.02)
        return samples


class Screen:
    """An RFB session: full or partial non-incremental updates, timed."""

    def __init__(self, recv: Callable[[], bytes], send: Callable[[bytes], None]) -> None:
        self.stream = Stream(recv, send)
        self.init: ServerInit = handshake(self.stream)

    def update(self, width: int, height: int) -> float:
        started = time.perf_counter()
        self.stream.send(struct.pack(">BBHHHH", 3, 0, 0, 0, width, height))
        assert self.stream.read(1) == b"\x00"
        _, rects = struct.unpack(">BH", self.stream.read(3))
        for _ in range(rects):
            _x, _y, w, h, encoding = struct.unpack(">HHHHi", self.stream.read(12))
            assert encoding == 0
            self.stream.read(w * h * self.init.bits_per_pixel // 8)
        return time.perf_counter() - started


def frames(url: str, headers: dict[str, str], direct_socket: socket.socket, host: str,
           vm: str, count: int) -> dict[str, list[float]]:
    sock = direct_socket
    direct = Screen(lambda: sock.recv(1 << 20), sock.sendall)
    out: dict[str, list[float]] = {}
    with open_socket(url, headers, vm, "vnc", host) as ws:
        relayed = Screen(lambda: bytes(ws.recv(timeout=30)), ws.send)
        full = (direct.init.width, direct.init.height)
        try:
            for width, height in ((64, 64), full):
                size = f"{width}x{height}"
                for key in ("direct", "relayed", "added"):
                    out[f"{size} {key}"] = []
                for i in range(count):
                    pair = (direct, relayed) if i % 2 == 0 else (relayed, direct)
                    times = {id(s): s.update(width, height) for s in pair}
                    out[f"{size} direct"].append(times[id(direct)])
                    out[f"{size} relayed"].append(times[id(relayed)])
                    out[f"{size} added"].append(times[id(relayed)] - times[id(direct)])
        finally:
            sock.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--keys", type=int, default=200)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--no-serial", action="store_true",
                        help="Only the screen's frames: no Debian VM to boot.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gp-bench-console-"))
    storage = f"gp-bench-{uuid.uuid4().hex[:6]}"
    os.environ.update(GLASSPANE_CONFIG_DIR=str(work / "config"),
                      GLASSPANE_DATA_DIR=str(work / "data"),
                      GLASSPANE_RUNTIME_DIR=str(work / "rt"),
                      GLASSPANE_TEMPLATE_STORAGE=storage,
                      GLASSPANE_VM_STORAGE=storage + "-vms")
    settings = Settings.load()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    conn = libvirt.open("qemu:///system")
    screen = conn.defineXML(SCREEN.format(name=f"bench-screen-{uuid.uuid4().hex[:6]}"))
    from glasspane.templates.service import template_from_debian
    from glasspane.vms.service import VmRequest, create_vm, destroy_vm
    try:
        screen.create()  # the firmware's screen: something to draw from the first moment
        if not args.no_serial:
            print("creating a Debian VM under TCG (a few minutes)...", flush=True)
            template_from_debian(settings, "deb")
            create_vm(settings, VmRequest(GUEST, "deb", memory_mib=640))
        pool = start(Xapi(password=PASSWORD))
        small_pool(pool.xapi)
        add_host(settings, "xcp", pool.url, "xenapi", user="root", password=PASSWORD)
        with served(settings, {"local": [GUEST, screen.name()], "xcp": ["web-1"]}) as \
                (url, headers):
            keys = [] if args.no_serial else keystrokes(url, headers, args.keys)
            fd = screen.openGraphicsFD(0, libvirt.VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH)
            qemu = frames(url, headers, socket.socket(fileno=fd), "local", screen.name(),
                          args.frames)
            [console] = pool.xapi.objects["console"].values()
            session = next(iter(pool.xapi.sessions))
            direct = xapi_http.connect(f"{pool.url}/console?uuid={console['uuid']}&"
                                       f"session_id={session}", lambda _: xapi_http.Peer(None))
            loopback = frames(url, headers, direct, "xcp", "web-1", args.frames)
        pool.stop()
        if keys:
            print(f"keystroke to echo, serial console through the server: "
                  f"{percentiles(keys)}")
        for server, found in (("QEMU's VNC", qemu), ("the loopback XAPI's RFB", loopback)):
            for what, samples in found.items():
                print(f"{server}, frame {what}: {percentiles(samples)}")
    finally:
        with suppress(Exception):
            destroy_vm(settings, GUEST)
        with suppress(libvirt.libvirtError):
            screen.destroy()
        with suppress(libvirt.libvirtError):
            screen.undefine()
        for pool_name in (storage + "-vms", storage):
            with suppress(libvirt.libvirtError):
                pool = conn.storagePoolLookupByName(pool_name)
                pool.refresh(0)
                for vol in pool.listAllVolumes():
                    vol.delete(0)
                pool.destroy()
                pool.undefine()
        conn.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
