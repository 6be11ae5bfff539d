"""Waiting for a guest: an address from the hypervisor, an SSH server that answers, then
cloud-init having finished (glasspane's key in place, the user-data applied).  With a console
watch, a guest that is not booting fails the wait early, and every timeout says what its
console printed last."""

from __future__ import annotations

import socket
import time
from collections.abc import Callable

from glasspane.errors import GuestUnreachable, HostError
from glasspane.guests.console import ConsoleWatch
from glasspane.guests.ssh import SshConnection

BOOT_FINISHED = "/var/lib/cloud/instance/boot-finished"
# How far past its timeout a wait goes on while the console shows the guest booting: a guest
# that prints is slow, not stuck (the console watch ends a silent one); still a bound.
SLOW_BOOT_FACTOR = 3
SLOW_HINT = ("it was still booting, its console growing: the host is slow (busy, or without "
             "KVM); give it a longer --timeout")


def wait_for(what: str, probe: Callable[[], str | None], timeout: float, host: str,
             interval: float = 2.0, watch: ConsoleWatch | None = None) -> str:
    """Poll `probe` until it returns a value; HostError naming `what` after `timeout` s (with
    the console's last lines), or as soon as `watch` finds the guest not booting.  While
    `watch` sees the console growing, the wait goes on past `timeout`, up to
    SLOW_BOOT_FACTOR times it: the guest is getting there."""
    started = time.monotonic()
    deadline, bound = started + timeout, started + timeout * SLOW_BOOT_FACTOR
    extended = False
    while True:
        value = probe()
        if value:
            return value
        if watch:
            watch.check()
        now = time.monotonic()
        if now >= deadline:
            slow = watch is not None and watch.booting()
            if slow and now < bound:
                extended = True
                time.sleep(interval)
                continue
            waited = f" (and {now - deadline:.0f} s more while its console grew)" \
                if extended else ""
            raise HostError(f"{what} did not happen within {timeout:.0f} s{waited}"
                            + (f"; {watch.describe()}" if watch else ""), host=host,
                            hint=SLOW_HINT if slow else watch.hint if watch else None)
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


def wait_cloud_init(connection: SshConnection, timeout: float,
                    watch: ConsoleWatch | None = None) -> None:
    """Wait until cloud-init has finished in the guest, logging in with glasspane's key; if
    SSH never lets us in, say why (and what the console printed last) rather than only that
    time ran out."""
    last: list[GuestUnreachable] = []

    def finished() -> str | None:
        try:
            done = connection.run(["test", "-e", BOOT_FINISHED], timeout=30)
        except GuestUnreachable as exc:
            last[:] = [exc]
            return None
        return "finished" if done.returncode == 0 else None

    target = connection.target
    # No silence check here: SSH has answered, so the guest has booted, and cloud-init may
    # work for minutes without a word on the console.
    try:
        wait_for(f"cloud-init in VM {target.vm}", finished, timeout, target.host)
    except HostError as exc:
        if watch is None:
            raise (last[0] if last else exc) from None
        what = last[0].detail if last else f"cloud-init did not finish within {timeout:.0f} s"
        raise GuestUnreachable(f"{what}; {watch.describe()}", host=target.host, vm=target.vm,
                               hint=last[0].hint if last else None) from None
