"""Waiting for a guest: an address from the hypervisor, then an SSH server that answers."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from glasspane.errors import HostError


def wait_for(what: str, probe: Callable[[], str | None], timeout: float, host: str,
             interval: float = 2.0) -> str:
    """Poll `probe` until it returns a value; HostError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise HostError(f"{what} did not happen within {timeout:.0f} s", host=host)
        time.sleep(interval)


def ssh_banner(address: str, port: int = 22, timeout: float = 3.0) -> str | None:
    """The SSH server's identification line, or None while nothing answers."""
    try:
        with socket.create_connection((address, port), timeout=timeout) as sock:
            line = sock.makefile("rb").readline(256)
    except OSError:
        return None
    text = line.decode("latin-1").strip()
    return text if text.startswith("SSH-") else None
