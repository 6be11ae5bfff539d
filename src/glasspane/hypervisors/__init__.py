"""Hypervisor hosts behind small declared capabilities (capabilities.py): libvirt (QEMU/KVM)
and XenAPI (XenServer, XCP-ng) drivers, made only through `connect` so that nothing outside
this package names a driver class."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from glasspane.hypervisors.capabilities import Capability, Driver


def connect(name: str, uri: str, kind: str = "libvirt", *, user: str = "",
            password: Callable[[], str] = lambda: "", verify_tls: bool = True,
            ca_file: str | None = None, cache_dir: Path | None = None) -> Driver:
    """A driver of `kind` connected to host `name` at `uri`; HostUnreachable when it cannot
    be reached.  `password` is read only by the drivers that log in with one."""
    # The drivers import their backends (libvirt, XenAPI): only the one asked for is loaded.
    if kind == "xenapi":
        from glasspane.hypervisors.xenapi_driver import XenApiDriver
        return XenApiDriver(name, uri, user, password(), verify_tls, ca_file)
    from glasspane.hypervisors.libvirt_driver import LibvirtDriver
    return LibvirtDriver(name, uri, cache_dir)


def declared(kind: str) -> frozenset[Capability]:
    """What drivers of `kind` can do, without connecting to a host."""
    if kind == "xenapi":
        from glasspane.hypervisors.xenapi_driver import XenApiDriver
        return XenApiDriver.capabilities
    from glasspane.hypervisors.libvirt_driver import LibvirtDriver
    return LibvirtDriver.capabilities
