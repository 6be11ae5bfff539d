"""XenServer and XCP-ng pools through XenAPI (the official `XenAPI` SDK), behind the same
interface as libvirt: the pool's hosts, storage (SRs) and VMs, their power state and guest
addresses, and VM lifecycle.  One session per connection, logged in again when XAPI says it
expired, and sent to the pool master when the host it reached says HOST_IS_SLAVE.

XAPI's Failure lists are translated here, once, into the faults every driver reports alike
(faults.py): the session and connection ones into HostUnreachable, VM_BAD_POWER_STATE into
Conflict naming the states, HANDLE_INVALID into NotFound, the rest into HostError with XAPI's
code and parameters; the Failure is kept as the cause.

Data moves through XAPI's HTTP handlers: /import (an XVA, as a template), /import_raw_vdi (a
disk: raw or VHD as it is, other formats streamed as raw; the cloud-init seed), /export (a VM as
an XVA) and /export_raw_vdi (a disk as VHD or raw), each under a task of glasspane's own, since
the HTTP exchange does not say how the transfer went (xapi_http.py).  A handler may redirect
to the pool member that sees the SR; that member's certificate is checked against the
fingerprint XAPI lists for it.  Pools keep their own templates, so this driver declares no
PROVISIONING (glasspane's own volumes): its VMs come from XenServer templates
(HOST_TEMPLATES, `provision_vm`).
"""

from __future__ import annotations

import contextlib
import os
import re
import ssl
import threading
import time
import xmlrpc.client
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import XenAPI

from glasspane.enums import DiskBus, Firmware, NicModel, PowerState, VmAction
from glasspane.errors import (
    Conflict,
    HostError,
    HostUnreachable,
    NotFound,
    UsageError,
)
from glasspane.hypervisors import faults, xapi_console, xapi_http
from glasspane.hypervisors import xenapi_hardware as hw
from glasspane.hypervisors.base import (
    Acceleration,
    HardwareChange,
    HostInfo,
    MachineHardware,
    NetworkInfo,
    StorageInfo,
    VmSummary,
    ip_addresses,
)
from glasspane.hypervisors.capabilities import Capability, Driver
from glasspane.hypervisors.channels import Channel
from glasspane.hypervisors.uris import redacted, without_secrets
from glasspane.images.references import STANDALONE, References

if TYPE_CHECKING:
    from glasspane.hypervisors.capabilities import (
        Console,
        ContainerKeys,
        Hardware,
        HostTemplates,
        ImageTransfer,
        Power,
        Resources,
        Snapshots,
    )

ORIGINATOR = "glasspane"
POWER_STATES = {"Running": PowerState.RUNNING, "Halted": PowerState.HALTED,
                "Paused": PowerState.PAUSED, "Suspended": PowerState.SUSPENDED}
# glasspane's actions as XAPI calls (VM_ACTION_STATES says from which power states).
ACTIONS: dict[VmAction, tuple[str, tuple[Any, ...]]] = {
    VmAction.START: ("start", (False, False)), VmAction.SHUTDOWN: ("clean_shutdown", ()),
    VmAction.POWEROFF: ("hard_shutdown", ()), VmAction.REBOOT: ("clean_reboot", ()),
    VmAction.PAUSE: ("pause", ()), VmAction.RESUME: ("unpause", ()),
    VmAction.SUSPEND: ("suspend", ())}
UPLOAD_BLOCK = 1 << 20
SESSION_ERRORS = ("SESSION_INVALID", "SESSION_AUTHENTICATION_FAILED", "HOST_IS_SLAVE")


def _power(native: str) -> PowerState:
    return POWER_STATES.get(native, PowerState.UNKNOWN)


class XenApiDriver:
    """A session with one pool (through its master)."""

    kind = "xenapi"
    capabilities = frozenset({Capability.INVENTORY, Capability.POWER, Capability.SNAPSHOTS,
                              Capability.HOST_TEMPLATES, Capability.IMAGE_TRANSFER,
                              Capability.RESOURCES, Capability.CONTAINER_KEYS,
                              Capability.CONSOLE, Capability.HARDWARE})

    def __init__(self, name: str, uri: str, user: str, password: str,
                 verify_tls: bool = True, ca_file: str | None = None) -> None:
        self.name, self.uri = name, uri
        self._given = uri  # whose password no message may carry
        self._user, self._password = user, password
        self._verify = verify_tls
        self._pinned = bool(ca_file) and verify_tls
        try:
            self._context = _tls_context(verify_tls, ca_file)
        except ssl.SSLError as exc:
            raise UsageError(f"host {name}: the pinned certificate {ca_file} is not a usable "
                             f"PEM certificate: {exc.reason}",
                             hint="the pool master's /etc/xensource/xapi-ssl.pem") from exc
        self._session: Any = None
        self._login(uri)

    # -- the session ----------------------------------------------------------------------------
    def _login(self, uri: str, redirects: int = 2, member: str | None = None) -> None:
        where = redacted(uri, query=False)  # seen by every user: no password, no query
        if not uri.startswith(("https://", "http://")):
            raise UsageError(f"host {self.name}: {where!r} is not an XAPI address",
                             hint="https://POOL-MASTER (or http:// on a trusted network)")
        transport = xmlrpc.client.SafeTransport(context=self._context) \
            if uri.startswith("https:") else None
        try:
            session = XenAPI.Session(uri, transport=transport)
            session.xenapi.login_with_password(self._user, self._password, "2.21", ORIGINATOR)
        except XenAPI.Failure as failure:
            details = [str(d) for d in failure.details]
            if details[0] == "HOST_IS_SLAVE" and redirects > 0 and len(details) > 1:
                # A pool member: XAPI names the master; talk to it instead.
                parts = urlsplit(uri)
                master = parts._replace(netloc=_with_port(details[1], parts.port)).geturl()
                self._login(master, redirects - 1, member or uri)
                return
            if details[0] == "SESSION_AUTHENTICATION_FAILED":
                raise HostUnreachable(f"XAPI at {where} refused user {self._user!r}: wrong user "
                                      "name or password", host=self.name) from failure
            raise HostUnreachable(f"cannot log in to XAPI at {where}: {' '.join(details)}",
                                  host=self.name) from failure
        except ssl.SSLCertVerificationError as exc:
            if member is not None and self._pinned:
                # The certificate pinned was the member's: it says nothing of the master's.
                raise HostUnreachable(
                    f"{redacted(member, query=False)} is a pool member; its master, XAPI at "
                    f"{where}, presented a certificate other than the pinned one "
                    f"({exc.verify_message})",
                    host=self.name,
                    hint="pin the master's certificate (its /etc/xensource/xapi-ssl.pem), or "
                         "a file holding both, with --ca-file; or add the master's "
                         "address") from exc
            raise HostUnreachable(
                f"XAPI at {where} presented a certificate glasspane does not trust: "
                f"{exc.verify_message}", host=self.name,
                hint="pin the pool master's certificate with --ca-file (XenServer keeps it in "
                     "/etc/xensource/xapi-ssl.pem), or check that this is the right "
                     "host") from exc
        except (OSError, ssl.SSLError, xmlrpc.client.ProtocolError) as exc:
            # Not chained: xmlrpc's errors quote the URL whole, password included.
            raise HostUnreachable(f"cannot reach XAPI at {where}: {self._clean(exc)}",
                                  host=self.name,
                                  hint="is the address right and XAPI up?") from None
        self._session, self.uri = session, uri

    def _call(self, what: str, method: str, *args: Any) -> Any:
        """Call XAPI method `method` (e.g. "VM.get_all_records"), logging in again once if
        the session expired; translate failures."""
        for attempt in (1, 2):
            target = self._session.xenapi
            for part in method.split("."):
                target = getattr(target, part)
            try:
                return target(*args)
            except XenAPI.Failure as failure:
                details = [str(d) for d in failure.details]
                if details[0] == "SESSION_INVALID" and attempt == 1:
                    self._login(self.uri)
                    continue
                raise self._translate(what, details) from failure
            except (TimeoutError, OSError, xmlrpc.client.ProtocolError) as exc:
                # Not chained: xmlrpc's errors quote the URL whole, password included.
                raise HostUnreachable(f"{what}: XAPI at {self._where} did not answer: "
                                      f"{self._clean(exc)}", host=self.name) from None
        raise AssertionError("unreachable")

    def _translate(self, what: str, details: list[str]) -> Exception:
        code = details[0]
        if code == "VM_BAD_POWER_STATE" and len(details) >= 4:
            return Conflict(f"host {self.name}: {what}: the VM is {details[3]}, "
                            f"it must be {details[2]}")
        if code in ("SR_FULL", "SR_BACKEND_FAILURE_44"):
            # Most SR drivers (sm's ext, lvm, nfs) report no space as backend error 44.
            asked = f" ({details[1]} bytes asked, {details[2]} free)" \
                if code == "SR_FULL" and len(details) > 2 else ""
            return HostError(f"{what}: the SR is full{asked}", host=self.name,
                             hint="free space on it, or choose another SR")
        if code == "DEFAULT_SR_NOT_FOUND":
            return HostError(f"{what}: the pool has no default SR", host=self.name,
                             hint="set one in XenCenter, or name an SR")
        if code == "HANDLE_INVALID":
            kind = details[1] if len(details) > 1 else "object"
            return NotFound(f"host {self.name}: {what}: no such {kind}")
        if code in SESSION_ERRORS:
            return HostUnreachable(f"{what}: {' '.join(details)}", host=self.name)
        return HostError(f"{what}: XAPI says {code}" +
                         (f" ({', '.join(details[1:])})" if details[1:] else ""),
                         host=self.name)

    # -- inventory ------------------------------------------------------------------------------
    def _vms(self) -> dict[str, dict[str, Any]]:
        """The pool's real VMs: not templates, snapshots or control domains."""
        records = self._call("listing VMs", "VM.get_all_records")
        return {ref: r for ref, r in records.items()
                if not r["is_a_template"] and not r["is_control_domain"]
                and not r.get("is_a_snapshot", False)}

    def _vm(self, name: str) -> tuple[str, dict[str, Any]]:
        found = [(ref, r) for ref, r in self._vms().items() if r["name_label"] == name]
        if not found:
            raise faults.no_vm(self.name, name)
        if len(found) > 1:
            raise Conflict(f"host {self.name}: {len(found)} VMs are named {name!r}; "
                           "rename all but one")
        return found[0]

    def list_vms(self) -> list[VmSummary]:
        return sorted((VmSummary(r["name_label"], r["uuid"], _power(r["power_state"]))
                       for r in self._vms().values()), key=lambda v: v.name)

    def host_info(self) -> HostInfo:
        pools = self._call("reading the pool", "pool.get_all_records")
        master_ref = next(iter(pools.values()))["master"] if pools else None
        hosts = self._call("listing hosts", "host.get_all_records")
        master = hosts.get(master_ref) or next(iter(hosts.values()))
        cpus = sum(int(h["cpu_info"].get("cpu_count", 0)) for h in hosts.values())
        memory = free = 0
        for record in hosts.values():
            metrics = self._call("reading host metrics", "host_metrics.get_record",
                                 record["metrics"])
            memory += int(metrics["memory_total"])
            free += int(metrics["memory_free"])
        version = master["software_version"]
        return HostInfo(self.name, redacted(self.uri, query=True), "xenapi",
                        master["hostname"],
                        f"{version.get('product_brand', 'XenServer')} "
                        f"{version.get('product_version', '')}".strip(),
                        master["cpu_info"].get("modelname", "?"), cpus, memory >> 20,
                        free >> 20, self.acceleration(),
                        self.list_storage(), self.list_vms(), self.list_networks())

    def acceleration(self) -> Acceleration:
        return Acceleration("xen", "a Xen hypervisor")

    def list_networks(self) -> list[NetworkInfo]:
        """The pool's networks (what `vm create --network` takes)."""
        records = self._call("listing networks", "network.get_all_records")
        return sorted((NetworkInfo(r["name_label"], r["bridge"], True)
                       for r in records.values()), key=lambda n: n.name)

    def list_templates(self, builtin: bool = False) -> list[tuple[str, str, int, bool]]:
        """The pool's own templates, and with `builtin` XenServer's built-in ones too (no
        disk: an installer): name, UUID, disk size, whether built in."""
        records = self._call("listing templates", "VM.get_all_records")
        found = []
        for record in records.values():
            if not record["is_a_template"] or record.get("is_a_snapshot", False) or \
                    (_builtin(record) and not builtin):
                continue
            size = 0
            for vbd in record["VBDs"]:
                vdi = self._call("reading a template's disk", "VBD.get_VDI", vbd)
                if vdi != "OpaqueRef:NULL":
                    size += int(self._call("reading a disk's size", "VDI.get_virtual_size",
                                           vdi))
            found.append((record["name_label"], record["uuid"], size, _builtin(record)))
        return sorted(found)

    def list_storage(self) -> list[StorageInfo]:
        records = self._call("listing storage", "SR.get_all_records")
        return sorted((StorageInfo(r["name_label"], None, int(r["physical_size"]),
                                   int(r["physical_utilisation"]),
                                   int(r["physical_size"]) - int(r["physical_utilisation"]),
                                   True)
                       for r in records.values() if r["content_type"] != "iso"),
                      key=lambda s: s.name)

    def vm_addresses(self, name: str) -> list[str]:
        _, record = self._vm(name)
        if record["guest_metrics"] == "OpaqueRef:NULL":
            return []
        metrics = self._call(f"reading VM {name}'s guest metrics",
                             "VM_guest_metrics.get_record", record["guest_metrics"])
        networks = metrics["networks"]
        # Keys are "<device>/ip", "<device>/ipv4/<n>", "<device>/ipv6/<n>": IPv4 first.  The
        # guest's tools write the values: only those that are addresses are kept.
        keys = sorted(networks, key=lambda k: ("ipv6" in k, k))
        return ip_addresses(networks[k] for k in keys)

    # -- consoles (xapi_console.py) ----------------------------------------------------------
    def open_serial(self, name: str) -> Channel:
        return xapi_console.no_serial(self, name)

    def open_screen(self, name: str) -> Channel:
        return xapi_console.open_screen(self, name, self._session._session)

    def vm_state(self, name: str) -> PowerState:
        return _power(self._vm(name)[1]["power_state"])

    def vm_action(self, name: str, action: VmAction | str) -> None:
        ref, record = self._vm(name)
        known = faults.check_action(self.name, name, action, _power(record["power_state"]))
        message, args = ACTIONS[known]
        if known == VmAction.RESUME and record["power_state"] == "Suspended":
            message, args = "resume", (False, False)  # from its saved memory, not a pause
        self._call(f"{known} VM {name}", f"VM.{message}", ref, *args)

    # -- snapshots ----------------------------------------------------------------------------
    def _snapshots(self, name: str) -> dict[str, str]:
        """The VM's snapshots: name -> ref."""
        ref, _ = self._vm(name)
        return {str(self._call("reading a snapshot", "VM.get_name_label", snap)): str(snap)
                for snap in self._call(f"listing VM {name}'s snapshots", "VM.get_snapshots",
                                       ref)}

    def snapshot_vm(self, name: str, snapshot: str) -> None:
        ref, _ = self._vm(name)
        if snapshot in self._snapshots(name):
            raise faults.snapshot_taken(self.name, name, snapshot)
        try:  # XAPI's current signature: (vm, new_name, ignore_vdis)
            self._call(f"snapshot {snapshot} of VM {name}", "VM.snapshot", ref, snapshot, [])
        except HostError as exc:
            if "MESSAGE_PARAMETER_COUNT_MISMATCH" not in exc.message:
                raise
            # XenServer/XCP-ng before ignore_vdis: (vm, new_name).
            self._call(f"snapshot {snapshot} of VM {name}", "VM.snapshot", ref, snapshot)

    def revert_vm(self, name: str, snapshot: str) -> None:
        """Back to the snapshot's disks (XAPI leaves the VM halted after a disk-only one)."""
        snapshots = self._snapshots(name)
        if snapshot not in snapshots:
            raise faults.no_snapshot(self.name, name, snapshot)
        self._call(f"revert of VM {name} to {snapshot}", "VM.revert", snapshots[snapshot])

    def list_snapshots(self, name: str) -> list[str]:
        return sorted(self._snapshots(name))

    # -- provisioning ---------------------------------------------------------------------------
    def provision_vm(self, template: str, name: str, cpus: int, memory_mib: int,
                     disk_bytes: int | None, seed_iso: str, timeout: float = 300,
                     report: Callable[[int, str], None] = lambda p, m: None,
                     full: bool = False, network: str | None = None,
                     disks: tuple[int, ...] = (),
                     nics: tuple[tuple[str, str | None], ...] = (),
                     firmware: Firmware = Firmware.BIOS) -> list[str]:
        """A VM `name` from template `template` (VM.clone, or VM.copy to the default SR when
        `full`: disks of its own, not copy-on-write over the template's; then
        VM.provision), resized, with its
        cloud-init seed as a small read-only disk (a CD drive may be taken, and there is only
        one), started; its guest addresses once its tools report one.  Every step is undone
        if a later one fails: nothing is left."""
        if any(r["name_label"] == name for r in self._vms().values()):
            raise faults.vm_taken(self.name, name)
        source = self._template(template)
        self._check_cpus(source, f"template {template!r}", cpus)
        undo: list[Callable[[], None]] = []
        try:
            if full:
                report(5, "copying the template")
                vm = self._call(f"copying template {template}", "VM.copy", source, name,
                                self._default_sr())
            else:
                report(5, "cloning the template")
                vm = self._call(f"cloning template {template}", "VM.clone", source, name)
            undo.append(lambda: self._destroy_with_disks(vm))
            self._forget_container_keys(vm, name)
            self._call(f"provisioning VM {name}", "VM.provision", vm)
            self._call(f"making {name} a VM", "VM.set_is_a_template", vm, False)
            if network is not None:
                self._connect_to(vm, name, network)
            report(20, "sizing CPUs, memory and disk")
            self._size_cpus(vm, name, cpus)
            memory = str(memory_mib << 20)
            self._call(f"sizing VM {name}", "VM.set_memory_limits", vm, memory, memory,
                       memory, memory)
            if disk_bytes:
                self._grow_first_disk(vm, name, disk_bytes)
            self._machine(vm, name, disks, nics, firmware)
            report(35, "attaching the cloud-init seed")
            self._attach_seed(vm, name, seed_iso)
            report(50, "starting")
            self._call(f"starting VM {name}", "VM.start", vm, False, False)
            report(65, "waiting for the guest's address")
            deadline = time.monotonic() + timeout
            while not (addresses := self.vm_addresses(name)):
                if time.monotonic() > deadline:
                    raise HostError(f"VM {name} reported no address within {timeout:.0f} s "
                                    "(are the guest tools installed?)", host=self.name)
                time.sleep(2)
            return addresses
        except BaseException:
            for step in reversed(undo):
                with contextlib.suppress(Exception):
                    step()
            raise

    def _machine(self, vm: str, name: str, disks: tuple[int, ...],
                 nics: tuple[tuple[str, str | None], ...], firmware: Firmware) -> None:
        """The new (halted) VM's data disks, NICs (in place of the template's) and
        firmware, before its first start."""
        for size in disks:
            hw.add_disk(self, name, size, DiskBus.VIRTIO, None)
        if nics:
            for vif in self._call(f"reading VM {name}'s interfaces", "VM.get_VIFs", vm):
                self._call(f"removing an interface of VM {name}", "VIF.destroy", vif)
            for network, mac in nics:
                hw.add_nic(self, name, network, mac, NicModel.VIRTIO)
        if firmware == Firmware.UEFI:
            params = self._call(f"reading VM {name}", "VM.get_HVM_boot_params", vm)
            self._call(f"giving VM {name} UEFI", "VM.set_HVM_boot_params", vm,
                       {**params, "firmware": "uefi"})

    def _connect_to(self, vm: str, name: str, network: str) -> None:
        """One interface, on `network` (by name, bridge or UUID), in place of the ones the
        template had."""
        records = self._call("listing networks", "network.get_all_records")
        found = [ref for ref, r in records.items()
                 if network in (r["name_label"], r["bridge"], r["uuid"])]
        if not found:
            names = ", ".join(sorted(r["name_label"] for r in records.values()))
            raise NotFound(f"no network named {network!r} on host {self.name}",
                           hint=f"the pool's networks: {names}")
        for vif in self._call(f"reading VM {name}'s interfaces", "VM.get_VIFs", vm):
            self._call(f"removing an interface of VM {name}", "VIF.destroy", vif)
        self._call(f"connecting VM {name} to {network}", "VIF.create", {
            "device": "0", "network": found[0], "VM": vm, "MAC": "", "MTU": "1500",
            "other_config": {}, "qos_algorithm_type": "", "qos_algorithm_params": {}})

    def _template(self, name: str) -> str:
        records = self._call("listing templates", "VM.get_all_records")
        found = [ref for ref, r in records.items() if r["name_label"] == name]
        templates = [ref for ref in found if records[ref]["is_a_template"]
                     and not records[ref].get("is_a_snapshot", False)]
        own = [ref for ref in templates if not _builtin(records[ref])]
        if not own:
            if templates:
                # XenServer's own: no disk, an installer from media or the network
                # (other_config:install-methods), which glasspane does not provide.
                raise UsageError(f"host {self.name}: {name!r} is one of XenServer's built-in "
                                 "templates: it has no disk, only an installer, and glasspane "
                                 "gives it no install source",
                                 hint="use a template with a disk: `glasspane template import "
                                      "NAME FILE --host` or one made in XenCenter; `glasspane "
                                      "template list --host` shows which is which")
            if found:
                raise Conflict(f"host {self.name}: {name!r} is a VM, not a template",
                               hint="make it a template in XenCenter, or pick one from "
                                    "`glasspane template list --host`")
            raise NotFound(f"no template named {name!r} on host {self.name}")
        return str(own[0])

    def _check_cpus(self, vm: str, label: str, cpus: int) -> None:
        """VM.start refuses a vCPU count that is not a multiple of the VM's (or template's)
        platform:cores-per-socket (VCPU_MAX_NOT_CORES_PER_SOCKET_MULTIPLE, vm_platform.ml):
        said before anything is changed.  `label`: "template 'x'", "VM 'y'"."""
        platform = self._call(f"reading {label}", "VM.get_platform", vm)
        per_socket = str(platform.get("cores-per-socket", "")).strip()
        if per_socket.isdigit() and int(per_socket) > 0 and cpus % int(per_socket):
            raise UsageError(f"host {self.name}: {label} has {per_socket} cores per "
                             f"socket, and {cpus} vCPUs is not a multiple of it",
                             hint=f"--cpus {int(per_socket) * max(1, cpus // int(per_socket))}"
                                  " or another multiple of " + per_socket)

    def _size_cpus(self, vm: str, name: str, cpus: int) -> None:
        """VCPUs_at_startup <= VCPUs_max at every step: XAPI refuses a max below the current
        at_startup and an at_startup above the max (INVALID_VALUE, xapi_vm.ml
        set_VCPUs_max / set_VCPUs_at_startup); so shrinking sets at_startup first."""
        current = int(self._call(f"reading VM {name}", "VM.get_VCPUs_at_startup", vm))
        steps = ("VM.set_VCPUs_at_startup", "VM.set_VCPUs_max") if cpus < current else \
            ("VM.set_VCPUs_max", "VM.set_VCPUs_at_startup")
        for method in steps:
            self._call(f"sizing VM {name}", method, vm, str(cpus))

    # -- resources ----------------------------------------------------------------------------
    def set_resources(self, name: str, cpus: int | None, memory_mib: int | None) -> None:
        """VM `name`'s vCPUs (VCPUs_max and VCPUs_at_startup) and memory (memory_static_max,
        dynamic_min and dynamic_max; static_min lowered only when it would exceed them, as
        XAPI wants static_min <= dynamic_min <= dynamic_max <= static_max) from its next
        boot.  XAPI changes either only on a halted VM (changing_VCPUs and
        changing_memory_limits, xapi_vm_lifecycle.ml): checked first, a Conflict naming the
        state otherwise; nothing is changed when a value is refused."""
        for value, unit in ((cpus, "vCPUs"), (memory_mib, "MiB of memory")):
            if value is not None and value < 1:
                raise UsageError(f"VM {name} on host {self.name}: {value} {unit} is not a "
                                 "size", hint="a whole number, 1 or more")
        ref, record = self._vm(name)
        faults.check_state(self.name, name, "setting its vCPUs and memory",
                           _power(record["power_state"]), {PowerState.HALTED})
        if cpus is not None:
            self._check_cpus(ref, f"VM {name!r}", cpus)
            self._size_cpus(ref, name, cpus)
        if memory_mib is not None:
            memory = memory_mib << 20
            static_min = min(int(record["memory_static_min"]), memory)
            self._call(f"sizing VM {name}'s memory", "VM.set_memory_limits", ref,
                       str(static_min), str(memory), str(memory), str(memory))

    def _disks(self, vm: str) -> list[tuple[str, str]]:
        """(VBD, VDI) of the VM's disks."""
        found = []
        for vbd in self._call("reading disks", "VM.get_VBDs", vm):
            record = self._call("reading a disk", "VBD.get_record", vbd)
            if record["type"] == "Disk" and record["VDI"] != "OpaqueRef:NULL":
                found.append((vbd, record["VDI"]))
        return found

    def _grow_first_disk(self, vm: str, name: str, size: int) -> None:
        disks = self._disks(vm)
        if not disks:
            raise HostError(f"VM {name} has no disk to grow", host=self.name)
        vdi = disks[0][1]
        if int(self._call("reading a disk's size", "VDI.get_virtual_size", vdi)) < size:
            self._call(f"growing VM {name}'s disk", "VDI.resize", vdi, str(size))

    def _default_sr(self) -> str:
        pools = self._call("reading the pool", "pool.get_all_records")
        sr = next(iter(pools.values()))["default_SR"] if pools else "OpaqueRef:NULL"
        if sr == "OpaqueRef:NULL":
            for ref, record in self._call("listing storage", "SR.get_all_records").items():
                if record["content_type"] == "user":
                    return str(ref)
            raise HostError("the pool has no default SR and no user SR", host=self.name)
        return str(sr)

    def _attach_seed(self, vm: str, name: str, seed_iso: str) -> None:
        size = os.path.getsize(seed_iso)
        vdi = self._call("making the seed disk", "VDI.create", {
            "name_label": f"{name} cloud-init seed", "name_description": "cidata",
            "SR": self._default_sr(), "virtual_size": str(size), "type": "user",
            "sharable": False, "read_only": False, "other_config": {}})
        try:
            self._upload("/import_raw_vdi", {"vdi": vdi, "format": "raw"}, size,
                         lambda: _file_blocks(seed_iso), lambda n: None,
                         f"uploading VM {name}'s cloud-init seed")
            self._call("attaching the seed disk", "VBD.create", {
                "VM": vm, "VDI": vdi, "userdevice": "autodetect", "bootable": False,
                "mode": "RO", "type": "Disk", "empty": False, "other_config": {},
                "qos_algorithm_type": "", "qos_algorithm_params": {}})
        except BaseException:
            with contextlib.suppress(Exception):
                self._call("removing the seed disk", "VDI.destroy", vdi)
            raise

    def _destroy_with_disks(self, vm: str) -> None:
        """The VM, its disks, and its snapshots with theirs (VM.destroy leaves snapshots
        behind, orphaned; XenCenter removes them too)."""
        record = self._call("reading a VM", "VM.get_record", vm)
        if record["power_state"] != "Halted":
            self._call("stopping a VM", "VM.hard_shutdown", vm)
        for snapshot in record.get("snapshots", []):
            with contextlib.suppress(NotFound):
                self._destroy_one(snapshot)
        self._destroy_one(vm)

    def _destroy_one(self, vm: str) -> None:
        # Its own disks only: a VDI another VM or a template also has a VBD on stays.
        disks = [vdi for _, vdi in self._disks(vm) if not hw.other_users(self, vm, vdi)]
        isos = self._own_isos(vm)
        self._call("destroying a VM", "VM.destroy", vm)
        for vdi in disks + isos:
            with contextlib.suppress(Exception):
                self._call("destroying a disk", "VDI.destroy", vdi)

    def _own_isos(self, vm: str) -> list[str]:
        """The ISO copies glasspane put in the VM's CD drive (marked as made for it)."""
        uuid = self._call("reading a VM", "VM.get_uuid", vm)
        found = []
        for vbd in self._call("reading disks", "VM.get_VBDs", vm):
            record = self._call("reading a disk", "VBD.get_record", vbd)
            if record["type"] == "CD" and record["VDI"] != "OpaqueRef:NULL" and \
                    self._call("reading a disk", "VDI.get_other_config",
                               record["VDI"]).get(hw.OWNER_KEY) == uuid:
                found.append(record["VDI"])
        return found

    def other_config(self, name: str) -> dict[str, str]:
        return dict(self._vm(name)[1]["other_config"])

    def other_configs(self) -> dict[str, tuple[PowerState, str, dict[str, str]]]:
        """Every VM's power state, UUID and other_config, by name, in one call."""
        return {r["name_label"]: (_power(r["power_state"]), r["uuid"],
                                  dict(r["other_config"])) for r in self._vms().values()}

    def write_other_config(self, name: str, values: dict[str, str],
                           remove: Iterable[str] = ()) -> list[str]:
        """Set `values` in VM `name`'s other_config and drop the keys `remove`, in one call
        (VM.set_other_config on a fresh read, as xscontainer did: remove_from_ then add_to_
        would be two events, with the key missing between them for every reader); the keys
        changed, and no call at all when none did."""
        ref, _ = self._vm(name)
        current = dict(self._call(f"reading VM {name}", "VM.get_other_config", ref))
        dropped = set(remove)
        wanted = {**{k: v for k, v in current.items() if k not in dropped}, **values}
        changed = sorted(k for k in set(current) | set(wanted)
                         if current.get(k) != wanted.get(k))
        if changed:
            self._call(f"updating VM {name}", "VM.set_other_config", ref, wanted)
        return changed

    def _forget_container_keys(self, vm: str, name: str) -> None:
        """XAPI copies other_config into clones, copies and exports: the containers of the
        VM it came from are not this one's."""
        from glasspane.containers.xscontainer import KEYS
        current = dict(self._call(f"reading VM {name}", "VM.get_other_config", vm))
        if any(key in current for key in KEYS):
            self._call(f"updating VM {name}", "VM.set_other_config", vm,
                       {k: v for k, v in current.items() if k not in KEYS})

    def xscontainer_hosts(self) -> list[str]:
        """The pool's hosts that have XenServer's own xscontainer (its host plugin answers):
        it wipes the container keys of the VMs it monitors, on start and after each failure.
        A plugin function that does not exist is refused by the plugin itself; a plugin that
        does not exist by XAPI (XENAPI_MISSING_PLUGIN)."""
        found = []
        for ref, record in self._call("listing hosts", "host.get_all_records").items():
            try:
                self._call("asking for xscontainer", "host.call_plugin", ref, "xscontainer",
                           "glasspane_probe", {})
            except HostUnreachable:
                raise
            except HostError as exc:
                if "XENAPI_MISSING_PLUGIN" in exc.message:
                    continue
            found.append(str(record["name_label"]))
        return sorted(found)

    def destroy_vm(self, name: str) -> None:
        """Stop the VM and destroy it with its disks (clones of a template's are its own)."""
        ref, _ = self._vm(name)
        self._destroy_with_disks(ref)

    # -- import -------------------------------------------------------------------------------
    def import_xva(self, path: str, name: str, progress: Callable[[int], None],
                   template: bool = True, sr: str | None = None) -> str:
        """Upload the XVA at `path` through XAPI's /import handler, streamed, as VM (or
        template) `name` on SR `sr` (default: the pool's, named explicitly: without sr_id
        XAPI falls back on pool.default_SR and fails when it is unset, import.ml); the new
        VM's UUID.  Progress counts bytes sent; the outcome is the XAPI task's.  A failed or
        cut-off upload leaves nothing: XAPI discards a partial import."""
        result = self._upload("/import", {"sr_id": self._sr(sr)}, os.path.getsize(path),
                              lambda: _file_blocks(path), progress, f"importing {path}")
        refs = re.findall(r"OpaqueRef:[0-9a-fA-F-]+", result)
        if not refs:
            raise HostError(f"importing {path}: XAPI named no VM", host=self.name)
        vm = refs[0]
        self._call(f"naming VM {name}", "VM.set_name_label", vm, name)
        self._forget_container_keys(vm, name)  # an export keeps the VM's other_config
        if template:
            self._call(f"making {name} a template", "VM.set_is_a_template", vm, True)
        return str(self._call(f"reading VM {name}", "VM.get_uuid", vm))

    def _url(self, handler: str, query: dict[str, str]) -> str:
        from urllib.parse import urlencode
        base = urlsplit(self.uri)
        return base._replace(path=handler, query=urlencode(query)).geturl()

    def _upload(self, handler: str, query: dict[str, str], size: int,
                blocks: Callable[[], Iterable[bytes]], progress: Callable[[int], None],
                what: str) -> str:
        """PUT `size` bytes to an import handler under a task of glasspane's own, and wait
        for the task: XAPI answers 200 before it reads a byte (import_raw_vdi.ml, import.ml)
        and records what went wrong afterwards only in the task.  The task's result."""
        task = self._call(f"{what}: creating the task", "task.create", what, ORIGINATOR)
        try:
            url = self._url(handler, {**query, "session_id": self._session._session,
                                      "task_id": task})
            try:
                xapi_http.put(url, size, blocks(), progress, self._peer)
            except xapi_http.HttpFailure as exc:
                raise self._transfer_failure(task, what, exc) from exc
            except xapi_http.UntrustedPeer as exc:
                raise self._untrusted(what, exc) from exc
            return self._wait_task(task, what)
        except BaseException:
            with contextlib.suppress(Exception):
                self._call(f"{what}: cancelling", "task.cancel", task)
            raise
        finally:
            with contextlib.suppress(Exception):
                self._call(f"{what}: removing the task", "task.destroy", task)

    def _transfer_failure(self, task: str, what: str,
                          failure: xapi_http.HttpFailure) -> Exception:
        """The error for a transfer the HTTP side reports as failed: XAPI's own reason when
        its task has one (a refusal before the body, a failure mid-stream), else the HTTP
        side's.  XAPI records a refusal before it answers; a broken connection gives it a
        moment to notice and record why."""
        try:
            self._wait_task(task, what, timeout=30 if failure.status == 0 else 0)
        except HostError as exc:
            if "did not finish within" not in exc.message:
                exc.message += f" (the transfer: {failure.detail})"
                return exc
        except (Conflict, NotFound) as exc:
            return exc
        if failure.status == 0:
            return HostError(f"{what}: the transfer with XAPI at {self._where} did not complete: "
                             f"{failure.detail}", host=self.name)
        return HostError(f"{what}: XAPI at {self._where} refused it: {failure.detail}",
                         host=self.name)

    def _untrusted(self, what: str, exc: xapi_http.UntrustedPeer) -> HostUnreachable:
        return HostUnreachable(f"{what}: the pool host at {exc}", host=self.name,
                               hint="a member XAPI redirects to must present the certificate "
                                    "XAPI lists for it (XenCenter: the server's General tab, "
                                    "Certificates); the master, the one given with --ca-file")

    def _peer(self, netloc: str) -> xapi_http.Peer:
        """How to trust the host at `netloc`: the pool master (the host glasspane logged in
        to) as configured; another member, which a handler redirected to, by the fingerprint
        XAPI lists for its certificate (pinned per host: the master's pinned certificate does
        not vouch for it), or, when XAPI lists none, as configured (a pool CA given with
        --ca-file, or the system's CAs)."""
        if netloc == urlsplit(self.uri).netloc or not self._verify:
            return xapi_http.Peer(self._context)
        hostname = urlsplit(f"//{netloc}").hostname
        hosts = self._call("finding the pool member", "host.get_all_records")
        found = [ref for ref, r in hosts.items() if r["address"] in (netloc, hostname)]
        if found:
            try:
                certificates = self._call("reading the member's certificate",
                                          "Certificate.get_all_records")
            except HostError:  # XAPI before certificates were listed: as configured
                certificates = {}
            for record in certificates.values():
                if record["host"] == found[0] and record["type"] == "host":
                    return xapi_http.Peer(_unverified_context(), str(record["fingerprint"]))
        return xapi_http.Peer(self._context)

    # -- disks ------------------------------------------------------------------------------
    def upload_raw(self, vdi: str, source: str, size: int, what: str) -> None:
        """The file `source` as it is into the VDI (an ISO, a seed)."""
        self._upload("/import_raw_vdi", {"vdi": vdi, "format": "raw"}, size,
                     lambda: _file_blocks(source), lambda n: None, what)

    # -- hardware (xenapi_hardware.py) --------------------------------------------------------
    def vm_hardware(self, name: str) -> MachineHardware:
        return hw.hardware(self, name)

    def add_disk(self, name: str, size: int, bus: DiskBus, storage: str | None
                 ) -> HardwareChange:
        return hw.add_disk(self, name, size, bus, storage)

    def resize_disk(self, name: str, device: str, size: int) -> HardwareChange:
        return hw.resize_disk(self, name, device, size)

    def remove_disk(self, name: str, device: str) -> HardwareChange:
        return hw.remove_disk(self, name, device)

    def add_nic(self, name: str, network: str, mac: str | None, model: NicModel
                ) -> HardwareChange:
        return hw.add_nic(self, name, network, mac, model)

    def remove_nic(self, name: str, mac: str) -> HardwareChange:
        return hw.remove_nic(self, name, mac)

    def insert_cdrom(self, name: str, image: str, volume: str, storage: str | None
                     ) -> HardwareChange:
        return hw.insert_cdrom(self, name, image, volume, storage)

    def eject_cdrom(self, name: str) -> HardwareChange:
        return hw.eject_cdrom(self, name)

    def upload_disk(self, source: str, name: str, progress: Callable[[int], None],
                    sr: str | None = None, references: References = STANDALONE) -> str:
        """A new VDI `name` on SR `sr` (default: the pool's) holding the disk image `source`:
        a VHD or raw file goes to /import_raw_vdi as it is; any other format, or a VHD with
        a parent (`references` says which parents it may have read), is streamed as raw,
        converted on the fly (no temporary copy).  Its UUID.  On any failure the VDI is
        destroyed: nothing half-imported is left."""
        from glasspane.images.detect import open_image
        from glasspane.images.parallel import prefetched
        from glasspane.images.vm import VmImage
        image = open_image(source, references=references)
        try:
            if isinstance(image, VmImage):
                raise UsageError(f"{source} is a whole VM ({image.format_name}), not a disk",
                                 hint="`glasspane template import` takes XVA and OVA")
            size, fmt = image.virtual_size, image.format_name
            vdi = self._call(f"making disk {name}", "VDI.create", {
                "name_label": name, "name_description": f"uploaded by glasspane from "
                f"{os.path.basename(source)}", "SR": self._sr(sr), "virtual_size": str(size),
                "type": "user", "sharable": False, "read_only": False, "other_config": {}})
            try:
                what = f"uploading {source}"
                if fmt in ("raw", "vhd") and image.parent is None:
                    self._upload("/import_raw_vdi", {"vdi": vdi, "format": fmt},
                                 os.path.getsize(source), lambda: _file_blocks(source),
                                 progress, what)
                else:
                    self._upload("/import_raw_vdi", {"vdi": vdi, "format": "raw"}, size,
                                 lambda: _raw_blocks(prefetched(image.extents())), progress,
                                 what)
            except BaseException:
                with contextlib.suppress(Exception):
                    self._call("removing the half-imported disk", "VDI.destroy", vdi)
                raise
            return str(self._call(f"reading disk {name}", "VDI.get_uuid", vdi))
        finally:
            image.close()

    def _sr(self, name: str | None) -> str:
        if name is None:
            return self._default_sr()
        records = self._call("listing storage", "SR.get_all_records")
        for ref, record in records.items():
            if name in (record["name_label"], record["uuid"]):
                return str(ref)
        raise NotFound(f"no SR named {name!r} on host {self.name}",
                       hint="`glasspane host info` lists them")

    # -- export -------------------------------------------------------------------------------
    def export_xva(self, name: str, path: str, progress: Callable[[int], None]) -> None:
        """VM `name` as an XVA from XAPI's /export handler, streamed into `path` (whole or
        not at all).  XAPI exports halted or suspended VMs; a running one is a Conflict."""
        ref, _ = self._vm(name)
        self._download("/export", {"ref": ref}, path, progress, f"exporting VM {name}",
                       xapi_http.xva_is_whole)

    def export_disk(self, name: str, index: int, fmt: str, path: str,
                    progress: Callable[[int], None]) -> int:
        """Disk `index` of VM `name` as `fmt` (raw or vhd) from /export_raw_vdi into `path`;
        its virtual size."""
        ref, _ = self._vm(name)
        disks = self._disks(ref)
        if not 0 <= index < len(disks):
            raise NotFound(f"host {self.name}: VM {name} has {len(disks)} disk(s), no disk "
                           f"{index}")
        vdi = disks[index][1]
        size = int(self._call("reading a disk's size", "VDI.get_virtual_size", vdi))

        def whole(got: str) -> str | None:
            if fmt == "vhd":
                return xapi_http.vhd_is_whole(got, size)
            length = os.path.getsize(got)
            return None if length == size else f"{length} of its {size} bytes came"

        self._download("/export_raw_vdi", {"vdi": vdi, "format": fmt}, path, progress,
                       f"exporting disk {index} of VM {name}", whole)
        return size

    def _download(self, handler: str, query: dict[str, str], path: str,
                  progress: Callable[[int], None], what: str,
                  whole: Callable[[str], str | None]) -> None:
        """GET an export into `path` under a task of glasspane's own; whole or not at all.
        XAPI sends no Content-Length and just closes the connection when it fails midway
        (export.ml, export_raw_vdi.ml), so the task says whether XAPI finished, and `whole`
        whether all of it arrived (a connection cut between the two ends cleanly)."""
        task = self._call(f"{what}: creating the task", "task.create", what, ORIGINATOR)
        try:
            url = self._url(handler, {**query, "session_id": self._session._session,
                                      "task_id": task})
            try:
                with open(path, "wb") as sink:
                    xapi_http.get(url, sink, progress, self._peer)
            except xapi_http.HttpFailure as exc:
                raise self._transfer_failure(task, what, exc) from exc
            except xapi_http.UntrustedPeer as exc:
                raise self._untrusted(what, exc) from exc
            self._wait_task(task, what)
            problem = whole(path)
            if problem is not None:
                raise HostError(f"{what}: the download from XAPI at {self._where} ended early "
                                f"({problem})", host=self.name,
                                hint="XAPI sent it all: something between cut the connection "
                                     "(a proxy's time limit?); try again")
        except BaseException:
            with contextlib.suppress(Exception):
                self._call(f"{what}: cancelling", "task.cancel", task)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            raise
        finally:
            with contextlib.suppress(Exception):
                self._call(f"{what}: removing the task", "task.destroy", task)

    @property
    def _where(self) -> str:
        return redacted(self.uri, query=False)

    def _clean(self, exc: BaseException) -> str:
        """The text of `exc` without the password of the host's URL (xmlrpc's errors quote
        the URL whole)."""
        return without_secrets(str(exc), self._given)

    def _wait_task(self, task: str, what: str, timeout: float = 3600) -> str:
        """Wait for an XAPI task; its result on success, HostError with XAPI's error info
        otherwise."""
        deadline = time.monotonic() + timeout
        while True:
            record = self._call(what, "task.get_record", task)
            if record["status"] == "success":
                return str(record["result"])
            if record["status"] in ("failure", "cancelled"):
                info = [str(i) for i in record["error_info"]] or [record["status"]]
                raise self._translate(what, info)
            if time.monotonic() > deadline:
                raise HostError(f"{what}: the XAPI task did not finish within "
                                f"{timeout:.0f} s", host=self.name)
            time.sleep(0.5)

    def close(self) -> None:
        if self._session is not None:
            # A failed logout is harmless: XAPI expires idle sessions itself.
            with contextlib.suppress(XenAPI.Failure, OSError, xmlrpc.client.Fault,
                                     xmlrpc.client.ProtocolError):
                self._session.xenapi.session.logout()
            self._session = None


def _file_blocks(path: str) -> Iterator[bytes]:
    with open(path, "rb") as source:
        while block := source.read(UPLOAD_BLOCK):
            yield block


def _raw_blocks(extents: Iterable[Any]) -> Iterator[bytes]:
    """The disk's every byte, holes as zeros, in blocks of at most UPLOAD_BLOCK."""
    for extent in extents:
        if extent.data is not None:
            yield extent.data
            continue
        left = extent.length
        while left:
            step = min(left, UPLOAD_BLOCK)
            yield bytes(step)
            left -= step


def _tls_context(verify: bool, ca_file: str | None) -> ssl.SSLContext:
    """Certificates checked against the system's CAs; or against one pinned certificate (a
    pool master's self-signed one: trusted as itself, whatever name it was issued to); or,
    only when asked, not at all."""
    if not verify:
        context = ssl.create_default_context()
        context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
        return context
    if ca_file:
        context = ssl.create_default_context(cafile=ca_file)
        context.check_hostname = False  # the pinned certificate itself is the identity
        return context
    return ssl.create_default_context()


def _builtin(record: dict[str, Any]) -> bool:
    """One of XenServer's own templates (is_default_template; older pools mark them in
    other_config only)."""
    return bool(record.get("is_default_template")) or \
        record.get("other_config", {}).get("default_template") == "true"


def _unverified_context() -> ssl.SSLContext:
    """For a host whose certificate is then compared with the fingerprint XAPI lists."""
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    return context


def _with_port(address: str, port: int | None) -> str:
    """The master's address as XAPI gives it (an IP), on the port the member was reached on;
    an address that carries its own port keeps it."""
    has_port = address.count(":") == 1 or (address.startswith("[") and "]:" in address)
    return address if has_port or not port else f"{address}:{port}"


class XapiWatcher:
    """Calls `changed(host)` when XAPI reports a change to a VM or its guest metrics
    (`event.from`), on a thread with a session of its own; reconnects after failures."""

    def __init__(self, name: str, connect: Callable[[], Driver],
                 changed: Callable[[str], None], wait: float = 5.0) -> None:
        self.name, self._connect, self.changed, self.wait = name, connect, changed, wait
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"xapi-events-{name}")
        self._thread.start()

    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                driver = self._connect()
            except Exception:  # unreachable now: the periodic pass says so; try again
                self._stop.wait(10)
                continue
            if not isinstance(driver, XenApiDriver):  # not a pool: nothing to watch here
                driver.close()
                return
            token = ""
            try:
                while not self._stop.is_set():
                    answer = driver._call("waiting for XAPI events", "event.from",
                                          ["vm", "vm_guest_metrics"], token, self.wait)
                    if token and answer["events"]:
                        self.changed(self.name)
                    token = answer["token"]
            except Exception:
                self._stop.wait(2)
            finally:
                driver.close()

    def stop(self) -> None:
        self._stop.set()


if TYPE_CHECKING:
    def _declared(driver: XenApiDriver) -> tuple[Driver, Power, Snapshots, HostTemplates,
                                                 ImageTransfer, Resources, ContainerKeys,
                                                 Console, Hardware]:
        """mypy holds the driver to the Protocol of each capability it declares."""
        return driver, driver, driver, driver, driver, driver, driver, driver, driver
