"""Waiting for a guest: an address from the hypervisor, an SSH server that answers, then
cloud-init having finished (glasspane's key in place, the user-data applied)."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from glasspane.errors import GuestUnreachable, HostError
from glasspane.guests.ssh import SshConnection

BOOT_FINISHED = "/var/lib/cloud/instance/boot-finished"


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


def wait_cloud_init(connection: SshConnection, timeout: float) -> None:
    """Wait until cloud-init has finished in the guest, logging in with glasspane's key; if
    SSH never lets us in, say why rather than only that time ran out."""
    last: list[GuestUnreachable] = []

    def finished() -> str | None:
        try:
            done = connection.run(["test", "-e", BOOT_FINISHED], timeout=30)
        except GuestUnreachable as exc:
            last[:] = [exc]
            return None
        return "finished" if done.returncode == 0 else None

    target = connection.target
    try:
        wait_for(f"cloud-init in VM {target.vm}", finished, timeout, target.host)
    except HostError:
        if last:
            raise last[0] from None
        raise
