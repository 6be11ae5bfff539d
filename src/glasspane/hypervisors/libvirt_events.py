"""libvirt's lifecycle events (a domain defined, started, paused, stopped, undefined), so the
inventory follows a change made anywhere (virsh, another tool) within a moment instead of at
the next poll.  One connection per watched host, all served by libvirt's default event loop on
one thread; a host whose connection drops is watched again on the next attempt."""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any

import libvirt

log = logging.getLogger("glasspane.libvirt_events")
_loop_lock = threading.Lock()
_loop_started = False


def ensure_loop() -> None:
    """libvirt's default event loop, registered and run once per process."""
    global _loop_started  # noqa: PLW0603 - one loop per process, as libvirt requires
    with _loop_lock:
        if _loop_started:
            return
        libvirt.virEventRegisterDefaultImpl()
        # A timer that fires every second keeps the loop turning even with no events.
        libvirt.virEventAddTimeout(1000, lambda *_: None, None)

        def run() -> None:
            while True:
                libvirt.virEventRunDefaultImpl()

        threading.Thread(target=run, daemon=True, name="libvirt-events").start()
        _loop_started = True


class LibvirtWatcher:
    """Calls `changed(host)` on every lifecycle event of every watched host."""

    def __init__(self, changed: Callable[[str], None]) -> None:
        self.changed = changed
        self._connections: dict[str, Any] = {}
        self._lock = threading.Lock()

    def watching(self, host: str) -> bool:
        with self._lock:
            conn = self._connections.get(host)
        return conn is not None and conn.isAlive() == 1

    def watch(self, host: str, uri: str) -> bool:
        """Start watching `host` (again, if its connection died); whether it now is."""
        if self.watching(host):
            return True
        ensure_loop()
        try:
            conn = libvirt.open(uri)
            conn.setKeepAlive(5, 3)  # a dead host is noticed in ~15 s
            conn.domainEventRegisterAny(None, libvirt.VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                        lambda *_: self.changed(host), None)
        except libvirt.libvirtError as exc:
            log.info("cannot watch host %s: %s", host, exc)
            return False
        with self._lock:
            old = self._connections.pop(host, None)
            self._connections[host] = conn
        if old is not None:
            with contextlib.suppress(libvirt.libvirtError):
                old.close()
        return True

    def close(self) -> None:
        with self._lock:
            connections = list(self._connections.values())
            self._connections.clear()
        for conn in connections:
            with contextlib.suppress(libvirt.libvirtError):
                conn.close()
