"""The libvirt driver: local (qemu:///system) and remote (qemu+ssh://) QEMU/KVM hosts.

libvirt's exceptions are translated here, once, into the faults every driver reports alike
(faults.py: NotFound, Conflict, HostUnreachable, else HostError), with libvirt's error kept as
the cause; nothing above this module sees libvirt's vocabulary.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from xml.sax.saxutils import escape, quoteattr

import defusedxml.ElementTree as SafeET
import libvirt

from glasspane.enums import DiskBus, NicModel, PowerState, VmAction
from glasspane.errors import Conflict, GlasspaneError, HostError, HostUnreachable, NotFound
from glasspane.hypervisors import faults, libvirt_console
from glasspane.hypervisors import libvirt_hardware as hardware
from glasspane.hypervisors.accel import probe_acceleration
from glasspane.hypervisors.base import (
    Acceleration,
    HardwareChange,
    HostInfo,
    MachineHardware,
    NetworkInfo,
    StorageInfo,
    VmSpec,
    VmSummary,
    VolumeInfo,
    ip_addresses,
)
from glasspane.hypervisors.capabilities import Capability
from glasspane.hypervisors.channels import Channel
from glasspane.hypervisors.domainxml import Domain
from glasspane.hypervisors.libvirt_domain import (
    METADATA_NS,
    domain_xml,
    parse_metadata,
    with_consoles,
)
from glasspane.hypervisors.uris import redacted, without_secrets

if TYPE_CHECKING:
    from glasspane.hypervisors.capabilities import (
        Console,
        Driver,
        Hardware,
        Power,
        Provisioning,
        Resources,
        Snapshots,
    )

# libvirt prints every error to stderr unless a handler is registered; ours are raised instead.
libvirt.registerErrorHandler(lambda _ctx, _err: None, None)

_STATES = {
    libvirt.VIR_DOMAIN_NOSTATE: PowerState.UNKNOWN,
    libvirt.VIR_DOMAIN_RUNNING: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: PowerState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: PowerState.RUNNING,
    libvirt.VIR_DOMAIN_SHUTOFF: PowerState.HALTED,
    libvirt.VIR_DOMAIN_CRASHED: PowerState.CRASHED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: PowerState.SUSPENDED,
}
# libvirt's errors that mean the connection to the host, not the request, failed.
_UNREACHABLE = (libvirt.VIR_ERR_NO_CONNECT, libvirt.VIR_ERR_INVALID_CONN, libvirt.VIR_ERR_RPC)


# How long to wait for uploads into a pool to finish before it can be rescanned.
REFRESH_PATIENCE = 600.0
# Where glasspane's directory storage lives on a host (libvirt's own image directory).
STORAGE_ROOT = "/var/lib/libvirt/images"


def is_local_uri(uri: str) -> bool:
    scheme, _, rest = uri.partition("://")
    return "+" not in scheme and not rest.split("/", 1)[0]


class LibvirtDriver:
    kind = "libvirt"
    capabilities = frozenset({Capability.INVENTORY, Capability.POWER, Capability.SNAPSHOTS,
                              Capability.PROVISIONING, Capability.RESOURCES,
                              Capability.CONSOLE, Capability.HARDWARE})

    def __init__(self, name: str, uri: str, cache_dir: Path | None = None) -> None:
        self.name = name
        self.uri = uri
        self._cache_dir = cache_dir
        try:
            self._conn = libvirt.open(uri)
        except libvirt.libvirtError as exc:
            # Seen by every user (the host's error, a task's): no password, no query.  Not
            # chained: libvirt's own message quotes the URI, password included.
            raise HostUnreachable(f"cannot connect to {redacted(uri, query=False)}: "
                                  f"{without_secrets(_message(exc), uri)}", host=name,
                                  hint="is libvirtd running there, and is the URI right?"
                                  ) from None

    def _call(self, what: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except libvirt.libvirtError as exc:
            raise self._translate(what, exc) from exc

    def _translate(self, what: str, exc: libvirt.libvirtError) -> GlasspaneError:
        """libvirt's error as the fault every driver reports for it."""
        code, text = exc.get_error_code(), f"{what} failed: {_message(exc)}"
        if code in (libvirt.VIR_ERR_NO_DOMAIN, libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT):
            return NotFound(f"host {self.name}: {text}")
        if code == libvirt.VIR_ERR_OPERATION_INVALID:  # "domain is not running" and the like
            return Conflict(f"host {self.name}: {text}")
        if code in _UNREACHABLE or (code == libvirt.VIR_ERR_SYSTEM_ERROR and
                                    exc.get_error_domain() == libvirt.VIR_FROM_RPC):
            return HostUnreachable(text, host=self.name)
        return HostError(text, host=self.name)

    def host_info(self) -> HostInfo:
        model, memory_mib, cpus, *_ = self._call("reading host facts", self._conn.getInfo)
        free = self._call("reading free memory", self._conn.getFreeMemory)
        version = self._call("reading the hypervisor version", self._conn.getVersion)
        major, minor, micro = version // 1_000_000, version // 1000 % 1000, version % 1000
        return HostInfo(
            name=self.name, uri=redacted(self.uri, query=True), driver=self.kind,
            hostname=self._call("reading the hostname", self._conn.getHostname),
            hypervisor=f"QEMU {major}.{minor}.{micro}", cpu_model=str(model), cpus=int(cpus),
            memory_mib=int(memory_mib), free_memory_mib=int(free) >> 20,
            acceleration=self.acceleration(), storage=self.list_storage(),
            vms=self.list_vms(), networks=self.list_networks())

    def list_networks(self) -> list[NetworkInfo]:
        """libvirt's virtual networks (what `vm create --network` takes)."""
        found = []
        for net in self._call("listing networks", self._conn.listAllNetworks):
            try:
                bridge = net.bridgeName()
            except libvirt.libvirtError:  # an inactive network may have no bridge yet
                bridge = ""
            found.append(NetworkInfo(net.name(), bridge, bool(net.isActive())))
        return sorted(found, key=lambda n: n.name)

    def acceleration(self) -> Acceleration:
        if is_local_uri(self.uri):
            # The verdict lives in the machine's cache; this glasspane's cache may hold a
            # guest image whose kernel can serve as the probe's payload.
            return probe_acceleration(payload_dirs=(self._cache_dir,) if self._cache_dir else ())
        try:
            self._conn.getDomainCapabilities(None, "x86_64", None, "kvm")
        except libvirt.libvirtError as exc:
            return Acceleration("tcg", f"the host's libvirt offers no KVM: {_message(exc)}")
        return Acceleration("kvm", "the host's libvirt offers KVM (not probed from here)")

    def list_storage(self) -> list[StorageInfo]:
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
            try:
                state = dom.state()[0]
                template, labels = self._metadata(dom)
                power = PowerState.SUSPENDED if state == libvirt.VIR_DOMAIN_SHUTOFF and \
                    dom.hasManagedSaveImage(0) else _STATES.get(state, PowerState.UNKNOWN)
            except libvirt.libvirtError as exc:
                # A transient VM that ended (or one undefined) between the listing and now
                # is simply gone, not a failure to list the others.
                if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                    continue
                raise self._translate(f"reading the state of VM {dom.name()}", exc) from exc
            out.append(VmSummary(dom.name(), dom.UUIDString(), power, template, labels))
        return sorted(out, key=lambda v: v.name)

    def _metadata(self, dom: Any) -> tuple[str | None, dict[str, str]]:
        """glasspane's template and labels of the VM; none for VMs glasspane did not make."""
        try:
            xml = dom.metadata(libvirt.VIR_DOMAIN_METADATA_ELEMENT, METADATA_NS, 0)
        except libvirt.libvirtError:  # no such element: not ours, or made before labels
            return None, {}
        return parse_metadata(xml)

    # ---- storage ------------------------------------------------------------------------

    def _pool(self, storage: str) -> Any:
        try:
            return self._conn.storagePoolLookupByName(storage)
        except libvirt.libvirtError as exc:
            raise HostError(f"no storage named {storage!r}", host=self.name) from exc

    def ensure_storage(self, name: str) -> StorageInfo:
        try:
            pool = self._conn.storagePoolLookupByName(name)
        except libvirt.libvirtError:
            pool = self._define_storage(name)
        if not pool.isActive():
            try:
                pool.create(0)
            except libvirt.libvirtError as exc:
                if not pool.isActive():  # another client may have started it meanwhile
                    raise HostError(f"starting storage {name} failed: {_message(exc)}",
                                    host=self.name) from exc
        return next(s for s in self.list_storage() if s.name == name)

    def _define_storage(self, name: str) -> Any:
        path = os.path.join(STORAGE_ROOT, name)
        xml = (f"<pool type='dir'><name>{escape(name)}</name>"
               f"<target><path>{escape(path)}</path></target></pool>")
        try:
            pool = self._conn.storagePoolDefineXML(xml)
        except libvirt.libvirtError as exc:
            # Several creations in parallel may race to define it: the loser uses the winner's.
            try:
                return self._conn.storagePoolLookupByName(name)
            except libvirt.libvirtError:
                raise HostError(f"defining storage {name} failed: {_message(exc)}",
                                host=self.name) from exc
        self._call(f"creating the directory of storage {name}", pool.build, 0)
        self._call(f"enabling storage {name} at boot", pool.setAutostart, 1)
        return pool

    def _refresh(self, pool: Any) -> None:
        """Rescan a pool.  libvirt refuses while an upload into it runs (several VMs being
        created at once): wait for it rather than fail."""
        deadline = time.monotonic() + REFRESH_PATIENCE
        while True:
            try:
                pool.refresh(0)
                return
            except libvirt.libvirtError as exc:
                busy = "asynchronous jobs" in (exc.get_error_message() or "")
                if not busy or time.monotonic() > deadline:
                    raise HostError(f"refreshing storage {pool.name()} failed: "
                                    f"{_message(exc)}", host=self.name) from exc
                time.sleep(0.5)

    def list_volumes(self, storage: str) -> list[VolumeInfo]:
        pool = self._pool(storage)
        self._refresh(pool)
        vols = self._call(f"listing volumes of {storage}", pool.listAllVolumes)
        out = []
        for vol in vols:
            try:
                out.append(self._volume_info(vol))
            except HostError:
                # Deleted since the listing (by a parallel destroy): not there any more.
                if vol.name() in pool.listVolumes():
                    raise
        return sorted(out, key=lambda v: v.name)

    def _volume_info(self, vol: Any) -> VolumeInfo:
        _, capacity, allocation = self._call(f"reading volume {vol.name()}", vol.info)
        root = SafeET.fromstring(self._call(f"reading volume {vol.name()}", vol.XMLDesc, 0))
        fmt = root.find("target/format")
        return VolumeInfo(vol.name(), vol.path(), capacity, allocation,
                          fmt.get("type", "raw") if fmt is not None else "raw")

    def upload_volume(self, storage: str, volume: str, source: str,
                      progress: Callable[[int], None]) -> VolumeInfo:
        pool = self._pool(storage)
        size = os.path.getsize(source)
        # Created as raw with the file's exact size; the refresh below lets libvirt see the
        # format the uploaded bytes really have.
        xml = (f"<volume><name>{escape(volume)}</name><capacity unit='bytes'>{size}</capacity>"
               f"<target><format type={quoteattr('raw')}/></target></volume>")
        vol = self._call(f"creating volume {volume} in {storage}", pool.createXML, xml, 0)
        try:
            self._send(vol, source, size, progress)
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                vol.delete(0)
            raise
        self._refresh(pool)
        return self._volume_info(self._call(f"finding volume {volume}",
                                            pool.storageVolLookupByName, volume))

    def _send(self, vol: Any, source: str, size: int, progress: Callable[[int], None]) -> None:
        stream = self._call("opening an upload stream", self._conn.newStream, 0)
        try:
            self._call(f"starting the upload of {vol.name()}", vol.upload, stream, 0, size, 0)
            with open(source, "rb") as f:
                while chunk := f.read(4 << 20):
                    sent = 0
                    while sent < len(chunk):
                        sent += self._call(f"uploading {vol.name()}", stream.send, chunk[sent:])
                    progress(len(chunk))
            self._call(f"finishing the upload of {vol.name()}", stream.finish)
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                stream.abort()
            raise

    def delete_volume(self, storage: str, volume: str) -> None:
        pool = self._pool(storage)
        try:
            vol = pool.storageVolLookupByName(volume)
        except libvirt.libvirtError as exc:
            raise NotFound(f"no volume {volume!r} in storage {storage}") from exc
        self._call(f"deleting volume {volume}", vol.delete, 0)

    def create_disk(self, storage: str, volume: str, backing: str, capacity: int,
                    linked: bool = True) -> VolumeInfo:
        pool = self._pool(storage)
        if linked:
            xml = (f"<volume><name>{escape(volume)}</name>"
                   f"<capacity unit='bytes'>{capacity}</capacity>"
                   f"<target><format type='qcow2'/></target><backingStore>"
                   f"<path>{escape(backing)}</path><format type='qcow2'/></backingStore>"
                   f"</volume>")
            vol = self._call(f"creating disk {volume}", pool.createXML, xml, 0)
            return self._volume_info(vol)
        source = self._call(f"finding {backing}", self._conn.storageVolLookupByPath, backing)
        xml = (f"<volume><name>{escape(volume)}</name>"
               f"<target><format type='qcow2'/></target></volume>")
        vol = self._call(f"copying {backing} to {volume}", pool.createXMLFrom, xml, source, 0)
        try:
            if capacity > self._volume_info(vol).capacity:
                self._call(f"growing disk {volume}", vol.resize, capacity, 0)
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                vol.delete(0)
            raise
        return self._volume_info(vol)

    def create_blank_disk(self, storage: str, volume: str, capacity: int) -> VolumeInfo:
        pool = self._pool(storage)
        xml = (f"<volume><name>{escape(volume)}</name>"
               f"<capacity unit='bytes'>{capacity}</capacity>"
               f"<target><format type='qcow2'/></target></volume>")
        return self._volume_info(self._call(f"creating disk {volume}", pool.createXML, xml, 0))

    def _ensure_network(self, name: str) -> None:
        try:
            net = self._conn.networkLookupByName(name)
        except libvirt.libvirtError as exc:
            raise HostError(f"no network named {name!r}", host=self.name) from exc
        if not net.isActive():
            self._call(f"starting network {name}", net.create)
            self._call(f"enabling network {name} at boot", net.setAutostart, 1)

    def create_vm(self, spec: VmSpec) -> None:
        if any(d.name() == spec.name for d in self._call("listing VMs",
                                                          self._conn.listAllDomains)):
            raise faults.vm_taken(self.name, spec.name)
        for network in {n.network for n in spec.nics} or {spec.network}:
            self._ensure_network(network)
        xml = domain_xml(spec, self.acceleration().kind)
        dom = self._call(f"defining VM {spec.name}", self._conn.defineXML, xml)
        try:
            self._call(f"starting VM {spec.name}", dom.create)
        except BaseException:
            with contextlib.suppress(libvirt.libvirtError):
                dom.undefine()
            raise

    def _domain(self, name: str) -> Any:
        try:
            return self._conn.lookupByName(name)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise faults.no_vm(self.name, name) from exc
            raise self._translate(f"finding VM {name}", exc) from exc

    def vm_addresses(self, name: str) -> list[str]:
        dom = self._domain(name)
        root = SafeET.fromstring(self._call(f"reading VM {name}", dom.XMLDesc, 0))
        addresses = []
        for iface in root.iter("interface"):
            mac = iface.find("mac")
            net = iface.find("source")
            if mac is None or net is None or not net.get("network"):
                continue
            network = self._call("finding the VM's network", self._conn.networkLookupByName,
                                 net.get("network"))
            for lease in self._call("reading DHCP leases", network.DHCPLeases, mac.get("address")):
                addresses.append(lease["ipaddr"])
        return ip_addresses(addresses)  # a lease's address comes from the guest's DHCP client

    def vm_state(self, name: str) -> PowerState:
        return self._state(self._domain(name))

    def _state(self, dom: Any) -> PowerState:
        if self._suspended(dom):
            return PowerState.SUSPENDED
        return _STATES.get(self._call(f"reading the state of VM {dom.name()}", dom.state)[0],
                           PowerState.UNKNOWN)

    def _suspended(self, dom: Any) -> bool:
        """Stopped with its memory saved (managed save): suspended, not halted."""
        state = self._call(f"reading the state of VM {dom.name()}", dom.state)[0]
        return bool(state == libvirt.VIR_DOMAIN_SHUTOFF and
                    self._call(f"reading VM {dom.name()}", dom.hasManagedSaveImage, 0))

    def vm_action(self, name: str, action: VmAction | str) -> None:
        dom = self._domain(name)
        state = self._state(dom)
        known = faults.check_action(self.name, name, action, state)
        calls = {VmAction.START: dom.create, VmAction.REBOOT: lambda: dom.reboot(0),
                 VmAction.PAUSE: dom.suspend, VmAction.RESUME: dom.resume,
                 VmAction.POWEROFF: dom.destroy, VmAction.SHUTDOWN: dom.shutdown,
                 # Suspend: memory saved to disk and the VM stopped (libvirt's managed save);
                 # resume starts it again from there, and poweroff forgets the saved memory.
                 VmAction.SUSPEND: lambda: dom.managedSave(0)}
        if state == PowerState.SUSPENDED:
            calls[VmAction.RESUME] = dom.create
            calls[VmAction.POWEROFF] = lambda: dom.managedSaveRemove(0)
        self._call(f"{known} of VM {name}", calls[known])

    def set_resources(self, name: str, cpus: int | None, memory_mib: int | None) -> None:
        """The VM's vCPUs and memory in its persistent definition (the next boot's; a
        running VM keeps its own until then).  Each maximum first, then the current value
        under it: raising both needs the room, and lowering the maximum lowers the current
        value with it."""
        dom = self._domain(name)
        config = libvirt.VIR_DOMAIN_AFFECT_CONFIG
        if cpus is not None:
            self._call(f"setting the vCPUs of VM {name}", dom.setVcpusFlags, cpus,
                       config | libvirt.VIR_DOMAIN_VCPU_MAXIMUM)
            self._call(f"setting the vCPUs of VM {name}", dom.setVcpusFlags, cpus, config)
        if memory_mib is not None:
            self._call(f"setting the memory of VM {name}", dom.setMemoryFlags,
                       memory_mib << 10, config | libvirt.VIR_DOMAIN_MEM_MAXIMUM)
            self._call(f"setting the memory of VM {name}", dom.setMemoryFlags,
                       memory_mib << 10, config)
        self._gain_consoles(dom)

    def _gain_consoles(self, dom: Any) -> None:
        """A VM defined before glasspane gave VMs consoles gains them at its next definition
        change (from its next boot, as the change itself): read back, given what it lacks,
        defined again.  The secure form keeps a VNC password the VM may have."""
        flags = libvirt.VIR_DOMAIN_XML_INACTIVE | libvirt.VIR_DOMAIN_XML_SECURE
        domain = Domain.from_xml(self._call(f"reading VM {dom.name()}", dom.XMLDesc, flags))
        if with_consoles(domain):
            self._call(f"giving VM {dom.name()} its consoles", self._conn.defineXML,
                       domain.to_xml())

    def open_serial(self, name: str) -> Channel:
        return libvirt_console.open_serial(self.uri, self.name, name)

    def open_screen(self, name: str) -> Channel:
        return libvirt_console.open_screen(self._conn, self.uri, self.name, name,
                                           local=is_local_uri(self.uri))

    def snapshot_vm(self, name: str, snapshot: str) -> None:
        dom = self._domain(name)
        if snapshot in self.list_snapshots(name):
            raise faults.snapshot_taken(self.name, name, snapshot)
        xml = f"<domainsnapshot><name>{escape(snapshot)}</name></domainsnapshot>"
        self._call(f"snapshot {snapshot} of VM {name}", dom.snapshotCreateXML, xml, 0)

    def revert_vm(self, name: str, snapshot: str) -> None:
        dom = self._domain(name)
        try:
            snap = dom.snapshotLookupByName(snapshot, 0)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN_SNAPSHOT:
                raise faults.no_snapshot(self.name, name, snapshot) from exc
            raise self._translate(f"finding snapshot {snapshot} of VM {name}", exc) from exc
        self._call(f"revert of VM {name} to {snapshot}", dom.revertToSnapshot, snap, 0)

    def list_snapshots(self, name: str) -> list[str]:
        dom = self._domain(name)
        return sorted(self._call(f"listing snapshots of VM {name}", dom.snapshotListNames, 0))

    def destroy_vm(self, name: str) -> None:
        dom = self._domain(name)
        if dom.isActive():
            self._call(f"stopping VM {name}", dom.destroy)
        # Its UEFI variable store (a file of its own, beside its disks) goes with it.
        flags = libvirt.VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA | \
            libvirt.VIR_DOMAIN_UNDEFINE_NVRAM
        self._call(f"forgetting VM {name}", dom.undefineFlags, flags)

    def volume_users(self, path: str) -> list[str]:
        users = []
        for dom in self._call("listing VMs", self._conn.listAllDomains):
            root = SafeET.fromstring(self._call(f"reading VM {dom.name()}", dom.XMLDesc, 0))
            files = {e.get("file") for e in root.iter("source")}
            if path in files:
                users.append(f"VM {dom.name()}")
        for pool in self._call("listing storage pools", self._conn.listAllStoragePools):
            if not pool.isActive():
                continue
            for vol in self._call(f"listing volumes of {pool.name()}", pool.listAllVolumes):
                root = SafeET.fromstring(self._call("reading a volume", vol.XMLDesc, 0))
                if root.findtext("backingStore/path") == path:
                    users.append(f"volume {vol.path()}")
        return users

    # ---- hardware (libvirt_hardware.py) --------------------------------------------------

    def vm_hardware(self, name: str) -> MachineHardware:
        return hardware.hardware(self, name)

    def add_disk(self, name: str, size: int, bus: DiskBus, storage: str | None
                 ) -> HardwareChange:
        return hardware.add_disk(self, name, size, bus, storage)

    def resize_disk(self, name: str, device: str, size: int) -> HardwareChange:
        return hardware.resize_disk(self, name, device, size)

    def remove_disk(self, name: str, device: str) -> HardwareChange:
        return hardware.remove_disk(self, name, device)

    def add_nic(self, name: str, network: str, mac: str | None, model: NicModel
                ) -> HardwareChange:
        return hardware.add_nic(self, name, network, mac, model)

    def remove_nic(self, name: str, mac: str) -> HardwareChange:
        return hardware.remove_nic(self, name, mac)

    def insert_cdrom(self, name: str, image: str, volume: str, storage: str | None
                     ) -> HardwareChange:
        return hardware.insert_cdrom(self, name, image, volume, storage)

    def eject_cdrom(self, name: str) -> HardwareChange:
        return hardware.eject_cdrom(self, name)

    def close(self) -> None:
        with contextlib.suppress(libvirt.libvirtError):
            self._conn.close()


def _message(exc: libvirt.libvirtError) -> str:
    text = exc.get_error_message() or str(exc)
    return text.splitlines()[0] if text else "unknown libvirt error"


if TYPE_CHECKING:
    def _declared(driver: LibvirtDriver
                  ) -> tuple[Driver, Power, Snapshots, Provisioning, Resources, Console,
                             Hardware]:
        """mypy holds the driver to the Protocol of each capability it declares."""
        return driver, driver, driver, driver, driver, driver, driver
