"""The consoles of libvirt VMs as channels (channels.py).

The serial console is libvirt's console stream (virDomainOpenConsole), non-blocking, served by
libvirt's default event loop (the one thread that also carries the lifecycle events): its
readable callback copies the VM's output into a socket pair, and a handle on our end of the
pair copies what is typed into the stream.  Both run on that thread, so the stream is never
used from two threads at once.  The VM stopping ends the stream, which closes the pair.

The screen is QEMU's VNC server: here, a socket libvirt makes for us and connects to it
(virDomainOpenGraphicsFD: no file permissions or ports involved); on a remote host over
qemu+ssh, the VNC socket in the VM's directory (or its loopback port) reached through the
host's SSH (`ssh -W`, which relays stdin and stdout to it: no shell, no command).
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
from typing import Any

import defusedxml.ElementTree as SafeET
import libvirt

from glasspane import process
from glasspane.errors import Conflict, HostError
from glasspane.hypervisors import faults
from glasspane.hypervisors.channels import STALL, Channel
from glasspane.hypervisors.libvirt_events import ensure_loop

_EVENTS = (libvirt.VIR_STREAM_EVENT_READABLE | libvirt.VIR_STREAM_EVENT_ERROR |
           libvirt.VIR_STREAM_EVENT_HANGUP)
_HANDLE = (libvirt.VIR_EVENT_HANDLE_READABLE | libvirt.VIR_EVENT_HANDLE_ERROR |
           libvirt.VIR_EVENT_HANDLE_HANGUP)
_AUTHORITY = re.compile(r"^(?:(?P<user>[^@/]+)@)?(?P<host>\[[^\]]+\]|[^:/]+)(?::(?P<port>\d+))?$")
_RETRY = 0.01  # s between tries to write to a stream whose buffers are full


class SerialStream:
    """One attachment to a VM's serial console.  libvirt allows one per console: FORCE takes
    it from whoever had it (a stale session, `virsh console`), as a person re-attaching wants."""

    def __init__(self, uri: str, host: str, name: str) -> None:
        ensure_loop()  # before the connection: its stream's events need the loop
        self._conn = libvirt.open(uri)
        self._lock = threading.Lock()
        self._done = False
        self._watch: int | None = None
        try:
            dom = self._conn.lookupByName(name)
            if not dom.isActive():
                raise Conflict(f"VM {name} on host {host} is not running: its serial console "
                               "is there only while it runs", hint="start the VM first")
            self._stream = self._conn.newStream(libvirt.VIR_STREAM_NONBLOCK)
            dom.openConsole(None, self._stream, libvirt.VIR_DOMAIN_CONSOLE_FORCE)
        except libvirt.libvirtError as exc:
            self._conn.close()
            raise _error(exc, f"opening the serial console of VM {name}", host, name) from exc
        except BaseException:
            self._conn.close()
            raise
        self._ours, theirs = socket.socketpair()
        self._ours.settimeout(STALL)
        self.channel = Channel(theirs, self.finish)
        self._stream.eventAddCallback(_EVENTS, self._from_vm, None)
        self._watch = libvirt.virEventAddHandle(self._ours.fileno(), _HANDLE, self._to_vm,
                                                None)

    def _from_vm(self, stream: Any, events: int, _opaque: Any) -> None:
        try:
            while not self._done:
                data = stream.recv(65536)
                if data == -2:  # nothing more for now
                    break
                if not data:  # the console ended: the VM stopped
                    self.finish()
                    return
                self._ours.sendall(data)
            if events & (libvirt.VIR_STREAM_EVENT_ERROR | libvirt.VIR_STREAM_EVENT_HANGUP):
                self.finish()
        except (libvirt.libvirtError, OSError):
            self.finish()

    def _to_vm(self, _watch: int, _fd: int, events: int, _opaque: Any) -> None:
        try:
            data = self._ours.recv(65536) if events & libvirt.VIR_EVENT_HANDLE_READABLE else b""
            if not data:  # the relay went
                self.finish()
                return
            while data and not self._done:
                sent = self._stream.send(data)
                if sent == -2:
                    threading.Event().wait(_RETRY)
                    continue
                data = data[sent:]
        except (libvirt.libvirtError, OSError):
            self.finish()

    def finish(self) -> None:
        """Let go of the console (idempotent, from any thread)."""
        with self._lock:
            if self._done:
                return
            self._done = True
        if self._watch is not None:
            libvirt.virEventRemoveHandle(self._watch)
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.eventRemoveCallback()
        with contextlib.suppress(libvirt.libvirtError):
            self._stream.abort()
        with contextlib.suppress(OSError):
            self._ours.shutdown(socket.SHUT_RDWR)
        self._ours.close()
        with contextlib.suppress(libvirt.libvirtError):
            self._conn.close()


def open_serial(uri: str, host: str, name: str) -> Channel:
    return SerialStream(uri, host, name).channel


def open_screen(conn: Any, uri: str, host: str, name: str, local: bool) -> Channel:
    """A channel to VM `name`'s VNC server (RFB from its first byte)."""
    try:
        dom = conn.lookupByName(name)
        if not dom.isActive():
            raise Conflict(f"VM {name} on host {host} is not running: its screen is there "
                           "only while it runs", hint="start the VM first")
        if local:
            fd = dom.openGraphicsFD(0, libvirt.VIR_DOMAIN_OPEN_GRAPHICS_SKIPAUTH)
            return Channel(socket.socket(fileno=fd))
        xml = dom.XMLDesc(0)
    except libvirt.libvirtError as exc:
        raise _error(exc, f"opening the screen of VM {name}", host, name) from exc
    return _over_ssh(uri, host, name, vnc_address(xml, host, name))


def vnc_address(xml: str, host: str, name: str) -> str:
    """Where a running domain's VNC server listens, as `ssh -W` takes it: a socket's path,
    or an address and port."""
    graphics = SafeET.fromstring(xml).find("devices/graphics[@type='vnc']")
    if graphics is None:
        raise Conflict(f"VM {name} on host {host} has no VNC screen",
                       hint="it gains one at its next definition change (vm set)")
    listen = graphics.find("listen")
    path = graphics.get("socket") or (listen.get("socket") if listen is not None else None)
    if path:
        return str(path)
    port = graphics.get("port", "-1")
    address = graphics.get("listen") or "127.0.0.1"
    if not port.isdigit():
        raise HostError(f"VM {name}'s VNC server has no port yet", host=host)
    return f"{address}:{port}"


def ssh_target(uri: str) -> list[str]:
    """ssh's arguments naming the host of a qemu+ssh URI (checked at registration, uris.py)."""
    authority = uri.partition("://")[2].split("/", 1)[0]
    found = _AUTHORITY.match(authority)
    if found is None:
        raise HostError(f"cannot reach the host of {authority.rpartition('@')[2]!r} by SSH")
    args = ["-p", found["port"]] if found["port"] else []
    if found["user"]:
        args += ["-l", found["user"]]
    return [*args, "--", found["host"].strip("[]")]


def _over_ssh(uri: str, host: str, name: str, address: str) -> Channel:
    ours, theirs = socket.socketpair()
    # BatchMode: no prompt on the server's terminal; the host's key must be known already,
    # as it is for libvirt's own qemu+ssh connection.
    args = ["ssh", "-o", "BatchMode=yes", "-o", "ExitOnForwardFailure=yes", "-W", address,
            *ssh_target(uri)]
    try:
        running = process.spawn(args, f"reaching the screen of VM {name} on host {host}",
                                timeout=None, stdin=theirs.fileno(), stdout=theirs.fileno(),
                                stderr=process.DEVNULL, name="ssh")
    finally:
        theirs.close()  # ssh has its own copy
    return Channel(ours, lambda: running.stop(grace=1))


def _error(exc: libvirt.libvirtError, what: str, host: str, name: str) -> Exception:
    code = exc.get_error_code()
    text = f"{what} failed: {(exc.get_error_message() or str(exc)).splitlines()[0]}"
    if code == libvirt.VIR_ERR_NO_DOMAIN:
        return faults.no_vm(host, name)
    if code == libvirt.VIR_ERR_OPERATION_INVALID:
        return Conflict(f"host {host}: {text}")
    return HostError(text, host=host)
