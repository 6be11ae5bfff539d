"""HTTP to a container engine's unix socket inside a VM, over the VM's kept SSH connection.

Each HTTP connection is one SSH channel running a relay in the VM (socat, or a few lines of
python3) between the channel and the engine's socket, under `sudo -n` when the login user may
not open the socket itself (rootful Podman's is root's alone).  This is what the docker CLI's
`docker system dial-stdio` does, without needing it (Podman 4 lacks it), and unlike a forwarded
socket it works whatever the socket's owner.  httpcore keeps those connections alive between
requests, so a repeated call costs one request, not one process start in the VM.
"""

from __future__ import annotations

import os
import select
import tempfile
import typing
from collections.abc import Iterable

import httpcore

from glasspane.guests.ssh import SshConnection
from glasspane.process import Running

# Copies stdin to the socket and the socket to stdout until either side closes.
PYTHON_RELAY = """\
import os, socket, sys, threading
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
def up():
    while True:
        data = os.read(0, 65536)
        if not data:
            break
        s.sendall(data)
    s.shutdown(socket.SHUT_WR)
threading.Thread(target=up, daemon=True).start()
out = sys.stdout.buffer
while True:
    data = s.recv(65536)
    if not data:
        break
    out.write(data)
    out.flush()
"""


def relay_command(relay: str, socket_path: str, sudo: bool) -> list[str]:
    if relay == "socat":
        command = ["socat", "-", f"UNIX-CONNECT:{socket_path}"]
    else:
        command = ["python3", "-S", "-c", PYTHON_RELAY, socket_path]  # -S: no site, faster
    return ["sudo", "-n", *command] if sudo else command


class RelayStream(httpcore.NetworkStream):
    """One relay process's pipes as a byte stream, with timeouts."""

    def __init__(self, process: Running, stderr: typing.IO[bytes]) -> None:
        assert process.stdin is not None and process.stdout is not None
        self.process = process
        self._stderr = stderr
        self._in = process.stdin.fileno()
        self._out = process.stdout.fileno()
        os.set_blocking(self._in, False)

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            ready, _, _ = select.select([self._out], [], [], timeout)
            if not ready:
                raise httpcore.ReadTimeout(f"no answer within {timeout} s")
            data = os.read(self._out, max_bytes)
        except (OSError, ValueError) as exc:  # the pipe was closed under us
            raise httpcore.ReadError(self.failure() or f"the relay's pipe closed: {exc}"
                                     ) from exc
        if not data:  # the relay, its sudo or the SSH channel ended: say why if it failed
            status = self.process.wait(timeout=1)
            if status is None:
                return data
            if status != 0:
                raise httpcore.ReadError(self.failure())
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        view = memoryview(buffer)
        while view:
            _, ready, _ = select.select([], [self._in], [], timeout)
            if not ready:
                raise httpcore.WriteTimeout(f"could not send within {timeout} s")
            try:
                sent = os.write(self._in, view)
            except OSError as exc:  # BrokenPipeError, or the pipe closed under us
                raise httpcore.WriteError(self.failure() or "the relay ended") from exc
            view = view[sent:]

    def failure(self) -> str:
        """What the relay or ssh said on its way out, if it has ended."""
        if self.process.poll() is None:
            return ""
        self._stderr.seek(0)
        text = self._stderr.read().decode(errors="replace").strip()
        return text or f"the relay exited with status {self.process.returncode}"

    def close(self) -> None:
        for pipe in (self.process.stdin, self.process.stdout):
            if pipe is not None:
                pipe.close()
        if self.process.wait(timeout=2) is None:
            self.process.stop()
        self._stderr.close()

    def start_tls(self, ssl_context: typing.Any, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        # The engine's socket is local to the VM and the SSH channel is already encrypted.
        raise httpcore.ConnectError("TLS is not spoken over an engine relay")

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            # An idle kept connection that turns readable was closed by the other side:
            # httpcore then opens a new one instead of sending into a dead relay.
            return bool(select.select([self._out], [], [], 0)[0])
        return None


class RelayBackend(httpcore.NetworkBackend):
    """httpcore's "network": every connection is a new relay channel on the kept SSH master."""

    def __init__(self, ssh: SshConnection, socket_path: str, relay: str, sudo: bool) -> None:
        self.ssh = ssh
        self.command = relay_command(relay, socket_path, sudo)

    def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                    local_address: str | None = None,
                    socket_options: Iterable[typing.Any] | None = None) -> RelayStream:
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - the stream owns and closes it
        return RelayStream(self.ssh.open(self.command, stderr), stderr)

    def connect_unix_socket(self, path: str, timeout: float | None = None,
                            socket_options: Iterable[typing.Any] | None = None
                            ) -> RelayStream:
        return self.connect_tcp("localhost", 80, timeout)
