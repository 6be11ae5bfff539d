"""The libvirt driver: local (qemu:///system) and remote (qemu+ssh://) QEMU/KVM hosts.

libvirt's exceptions are translated here, once, into HostError/HostUnreachable; nothing above
this module sees libvirt's vocabulary.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import defusedxml.ElementTree as SafeET
import libvirt

from glasspane.errors import HostError, HostUnreachable
from glasspane.hypervisors.accel import probe_acceleration
from glasspane.hypervisors.base import Acceleration, HostInfo, StorageInfo, VmSummary

# libvirt prints every error to stderr unless a handler is registered; ours are raised instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: "unknown",
    libvirt.VIR_DOMAIN_RUNNING: "running",
    libvirt.VIR_DOMAIN_BLOCKED: "running",
    libvirt.VIR_DOMAIN_PAUSED: "paused",
    libvirt.VIR_DOMAIN_SHUTDOWN: "running",
    libvirt.VIR_DOMAIN_SHUTOFF: "halted",
    libvirt.VIR_DOMAIN_CRASHED: "crashed",
    libvirt.VIR_DOMAIN_PMSUSPENDED: "suspended",
}


def is_local_uri(uri: str) -> bool:
    scheme, _, rest = uri.partition("://")
    return "+" not in scheme and not rest.split("/", 1)[0]


class LibvirtDriver:
    driver_name = "libvirt"

    def __init__(self, name: str, uri: str, cache_dir: Path | None = None) -> None:
        self.name = name
        self.uri = uri
        self._cache_dir = cache_dir
        try:
            self._conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            raise HostUnreachable(f"cannot connect to {uri}: {_message(exc)}", host=name,
                                  hint="is libvirtd running there, and is the URI right?"
                                  ) from None

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except libvirt.libvirtError as exc:
            raise HostError(f"{what} failed: {_message(exc)}", host=self.name) from None

    def host_info(self) -> HostInfo:
        model, memory_mib, cpus, *_ = self._call("reading host facts", self._conn.getInfo)
        free = self._call("reading free memory", self._conn.getFreeMemory)
        version = self._call("reading the hypervisor version", self._conn.getVersion)
        major, minor, micro = version // 1_000_000, version // 1000 % 1000, version % 1000
        return HostInfo(
            name=self.name, uri=self.uri, driver=self.driver_name,
            hostname=self._call("reading the hostname", self._conn.getHostname),
            hypervisor=f"QEMU {major}.{minor}.{micro}", cpu_model=str(model), cpus=int(cpus),
            memory_mib=int(memory_mib), free_memory_mib=int(free) >> 20,
            acceleration=self.acceleration(), storage=self.storage(), vms=self.list_vms())

    def acceleration(self) -> Acceleration:
        if is_local_uri(self.uri):
            return probe_acceleration(self._cache_dir)
        try:
            self._conn.getDomainCapabilities(None, "x86_64", None, "kvm")
        except libvirt.libvirtError as exc:
            return Acceleration("tcg", f"the host's libvirt offers no KVM: {_message(exc)}")
        return Acceleration("kvm", "the host's libvirt offers KVM (not probed from here)")

    def storage(self) -> list[StorageInfo]:
        out = []
        for pool in self._call("listing storage pools", self._conn.listAllStoragePools):
            state, capacity, allocation, available = self._call(
                f"reading storage pool {pool.name()}", pool.info)
            root = SafeET.fromstring(self._call("reading a pool definition", pool.XMLDesc))
            out.append(StorageInfo(pool.name(), root.findtext("target/path"), capacity,
                                   allocation, available,
                                   state == libvirt.VIR_STORAGE_POOL_RUNNING))
        return sorted(out, key=lambda s: s.name)

    def list_vms(self) -> list[VmSummary]:
        out = []
        for dom in self._call("listing VMs", self._conn.listAllDomains):
            state = self._call(f"reading the state of VM {dom.name()}", dom.state)[0]
            out.append(VmSummary(dom.name(), dom.UUIDString(), _STATES.get(state, "unknown")))
        return sorted(out, key=lambda v: v.name)

    def close(self) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            self._conn.close()


def _message(exc: libvirt.libvirtError) -> str:
    text = exc.get_error_message() or str(exc)
    return text.splitlines()[0] if text else "unknown libvirt error"
