"""The serial console of a real Debian VM (under TCG, one for the module): through the served
API's WebSocket one reads its login prompt, types `root` and sees `Password:`; `glasspane vm
console` attaches to it through --server (ticket and WebSocket) and here (libvirt's stream),
sends a line and reads the guest's echo, and Ctrl-] leaves."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from glasspane.api.app import create_app
from glasspane.inventory.db import Database
from glasspane.inventory.users import add_user
from glasspane.settings import Settings
from tests.api.conftest import PASSWORDS, Server, login, serve
from tests.api.test_api import add_vm
from tests.hypervisors.conftest import guest_world
from tests.waiting import wait_for

GUEST = "con-vm"
API = "/api/v1"


@pytest.fixture(scope="module")
def guest(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    from glasspane.vms.service import VmRequest, create_vm
    base = tmp_path_factory.mktemp("console-guest")
    with guest_world(base, "gp-con", (GUEST,)) as settings:
        create_vm(settings, VmRequest(GUEST, "deb", memory_mib=640))
        yield settings


@pytest.fixture(scope="module")
def server(guest: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("console-db") / "inventory.db"
    database = Database.open(guest, f"sqlite:///{path}")
    with database.session() as session:
        add_user(session, "otto", PASSWORDS["otto"], "operator")
    add_vm(database, GUEST, "running")
    running = serve(create_app(guest, database, background=False))
    yield running
    running.stop()
    database.close()


class Output:
    """Everything read from a stream so far, read on a thread of its own."""

    def __init__(self, read: object) -> None:
        self.text = ""
        self._read = read
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while data := self._read():  # type: ignore[operator]
            self.text += data.decode(errors="replace") if isinstance(data, bytes) else data

    def wait(self, word: str, after: int = 0) -> int:
        wait_for(lambda: word in self.text[after:], f"{word!r} on the console", timeout=120)
        return self.text.index(word, after) + len(word)


@pytest.mark.integration
def test_the_serial_socket_reads_the_login_prompt_and_types(server: Server) -> None:
    otto = login(httpx.Client(base_url=server.url), "otto")
    issued = httpx.post(f"{server.url}{API}/vms/local/{GUEST}/console/tickets",
                        headers=otto, json={"kind": "serial"}).json()
    url = f"{server.url.replace('http', 'ws', 1)}{issued['url']}?ticket={issued['ticket']}"
    with connect(url, additional_headers=otto, open_timeout=30) as ws:
        seen = Output(lambda: _recv(ws))
        ws.send(b"\r")  # a fresh prompt: the first was printed before anyone listened
        at = seen.wait("login:")
        ws.send(b"root\r")
        seen.wait("Password:", at)
        ws.send(b"\r")  # no password: the guest says so and asks again


def _recv(ws: object) -> bytes:
    from websockets.exceptions import ConnectionClosed
    try:
        return bytes(ws.recv())  # type: ignore[attr-defined]
    except ConnectionClosed:
        return b""


def cli(*args: str, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-m", "glasspane.cli.main", *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)


def type_a_line_and_leave(process: subprocess.Popen[bytes]) -> str:
    assert process.stdin is not None and process.stdout is not None
    seen = Output(lambda: os.read(process.stdout.fileno(), 4096))  # type: ignore[union-attr]
    process.stdin.write(b"\n")  # Enter: a fresh login prompt
    process.stdin.flush()
    at = seen.wait("login:")
    process.stdin.write(b"echo-from-the-cli\n")
    process.stdin.flush()
    seen.wait("echo-from-the-cli", at)  # the guest's echo of what was typed
    process.stdin.write(b"\x1d")  # Ctrl-]
    process.stdin.flush()
    assert process.wait(timeout=60) == 0
    assert process.stderr is not None
    return process.stderr.read().decode()


@pytest.mark.integration
def test_the_cli_attaches_through_the_server_and_reads_the_echo(server: Server) -> None:
    token = login(httpx.Client(base_url=server.url), "otto")["Authorization"][7:]
    env = {**os.environ, "GLASSPANE_TOKEN": token}
    process = cli("--server", server.url, "vm", "console", GUEST, env=env)
    assert f"left the serial console of VM {GUEST}" in type_a_line_and_leave(process)


@pytest.mark.integration
def test_the_cli_attaches_here_and_reads_the_echo(guest: Settings) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("GLASSPANE_SERVER",)}
    process = cli("vm", "console", GUEST, env=env)
    assert f"left the serial console of VM {GUEST}" in type_a_line_and_leave(process)
    # The log is still the console's history.
    log = cli("vm", "console", GUEST, "--log", "--lines", "400", env=env)
    out, _ = log.communicate(timeout=60)
    assert log.returncode == 0 and "login:" in out.decode()


def test_a_missing_vm_is_a_one_line_error(tmp_path: Path, settings: Settings) -> None:
    process = cli("vm", "console", "no-such-vm", env=dict(os.environ))
    _, err = process.communicate(timeout=60)
    assert process.returncode != 0
    lines = err.decode().strip().splitlines()
    assert len(lines) <= 2 and "no-such-vm" in lines[0], err
