"""`glasspane vm console NAME`: this terminal attached to a VM's serial console.

What is typed goes to the VM byte for byte (the terminal in raw mode, so Ctrl-C, arrows and
tabs reach the guest), what the VM writes comes back as it is, and Ctrl-] detaches, as with
`virsh console`.  Without a terminal (a pipe, a script), lines are sent as typed with each
newline sent as the Enter key (a carriage return), and the end of the input detaches.

The console is a `Link`: here, the channel the driver opened (libvirt's console stream);
through --server, the API's WebSocket, opened with a one-time ticket and the same token.
"""

from __future__ import annotations

import contextlib
import os
import select
import sys
import termios
import threading
import tty
from typing import IO, Protocol

from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection

from glasspane.hypervisors.channels import Channel

ESCAPE = b"\x1d"  # Ctrl-]
CHUNK = 65536
# How often the loop reading the keyboard looks whether the console ended meanwhile.
_POLL = 0.2


class Link(Protocol):
    def recv(self) -> bytes:
        """What the VM wrote next; b"" once the console ended."""
        ...

    def send(self, data: bytes) -> None: ...
    def close(self) -> None: ...


class ChannelLink:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    def recv(self) -> bytes:
        try:
            return self.channel.sock.recv(CHUNK)
        except OSError:
            return b""

    def send(self, data: bytes) -> None:
        self.channel.sock.sendall(data)

    def close(self) -> None:
        self.channel.close()


class SocketLink:
    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.reason = ""

    def recv(self) -> bytes:
        try:
            message = self.ws.recv()
        except ConnectionClosed as exc:
            self.reason = exc.rcvd.reason if exc.rcvd is not None else ""
            return b""
        return message if isinstance(message, bytes) else message.encode()

    def send(self, data: bytes) -> None:
        self.ws.send(data)

    def close(self) -> None:
        self.ws.close()


def attach(link: Link, vm: str, stdin: IO[bytes] | None = None,
           stdout: IO[bytes] | None = None, note: IO[str] | None = None) -> bool:
    """Relay between the terminal and `link` until Ctrl-] (or the input's end) or the
    console's end; whether the console ended (the VM stopped) rather than being left."""
    stdin = stdin or sys.stdin.buffer
    stdout = stdout or sys.stdout.buffer
    note = note or sys.stderr
    fd = stdin.fileno()
    terminal = os.isatty(fd)
    ended = threading.Event()

    def from_vm() -> None:
        while data := link.recv():
            stdout.write(data)
            stdout.flush()
        ended.set()

    saved = termios.tcgetattr(fd) if terminal else None
    if terminal:
        note.write(f"attached to the serial console of VM {vm}; Ctrl-] leaves\r\n")
        note.flush()
        tty.setraw(fd)
    reader = threading.Thread(target=from_vm, daemon=True, name="console-output")
    reader.start()
    try:
        _keyboard(link, fd, terminal, ended)
        left = not ended.is_set()  # before closing the link ends the output too
    finally:
        if saved is not None:
            termios.tcsetattr(fd, termios.TCSADRAIN, saved)
        link.close()
        reader.join(timeout=5)
    note.write(f"\nleft the serial console of VM {vm}\n" if left else
               f"\nthe serial console of VM {vm} ended (the VM stopped, or another session "
               "took it)\n")
    return not left


def _keyboard(link: Link, fd: int, terminal: bool, ended: threading.Event) -> None:
    while not ended.is_set():
        ready, _, _ = select.select([fd], [], [], _POLL)
        if not ready:
            continue
        data = os.read(fd, 1024)
        if not data:  # the input ended (a pipe)
            return
        data, escape, _ = data.partition(ESCAPE)
        if not terminal:
            data = data.replace(b"\n", b"\r")  # a line's end is the Enter key
        if data:
            with contextlib.suppress(OSError, ConnectionClosed):
                link.send(data)
        if escape:
            return
