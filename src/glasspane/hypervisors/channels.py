"""A console's byte stream, whatever carries it (libvirt's console stream, QEMU's VNC socket,
ssh to a remote host's socket, XAPI's CONNECT /console), as one connected socket: whoever relays
it (the API's WebSockets, the CLI's terminal) reads and writes that socket and closes the
channel; what is behind it is released with it.  The far side closing (the VM stopped) reads as
the end of the stream."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Callable

# A relay that stops reading for this long is gone: the pumps feeding it give up rather than
# hold their thread (libvirt's event loop, for the serial console) for ever.
STALL = 30.0


class Channel:
    def __init__(self, sock: socket.socket, *closers: Callable[[], None]) -> None:
        self.sock = sock
        self._closers = list(closers)
        self._lock = threading.Lock()

    def on_close(self, closer: Callable[[], None]) -> None:
        with self._lock:
            self._closers.append(closer)

    def close(self) -> None:
        """Idempotent, from any thread."""
        with self._lock:
            closers, self._closers = self._closers, []
        with contextlib.suppress(OSError):
            self.sock.close()
        for closer in closers:
            with contextlib.suppress(Exception):  # releasing: nothing left to tell anyone
                closer()


def pump(source: socket.socket, sink: socket.socket, done: Callable[[], None]) -> threading.Thread:
    """Copy `source` to `sink` on a thread until either ends, then `done()`."""
    def run() -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            done()
    thread = threading.Thread(target=run, daemon=True, name="console-pump")
    thread.start()
    return thread


def spliced(far: socket.socket, *closers: Callable[[], None]) -> Channel:
    """A channel whose far end is `far` (a TLS socket, which the relay cannot share with an
    event loop as it is): two threads copy between it and a socket pair."""
    ours, theirs = socket.socketpair()
    channel = Channel(ours, *closers)

    def finish() -> None:
        for sock in (far, theirs):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
    channel.on_close(finish)
    pump(far, theirs, finish)
    pump(theirs, far, finish)
    return channel
