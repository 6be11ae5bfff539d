"""A loopback XAPI for tests: XML-RPC over HTTP, built from XAPI's published datamodel
(datamodel.json, derived from xapi-project/xen-api's doc/data/xenapi.json by
make_datamodel.py) and wire protocol, so that the official `XenAPI` SDK talks to it unchanged.
One Xapi is one pool's database; `start` serves it as the master or, with `host`, as a member
(add_member), so redirects and HOST_IS_SLAVE go where a real pool sends them.

What it enforces, as xen-api's ocaml/xapi sources do (each rule cites its file beside it):
- the envelope: every answer is a struct {Status: Success, Value} or {Status: Failure,
  ErrorDescription: [code, params...]}; `void` is ""; `int` travels as a string of digits;
- sessions: every call but login needs a live session (SESSION_INVALID otherwise);
  SESSION_AUTHENTICATION_FAILED for a wrong password; a pool member answers login with
  HOST_IS_SLAVE naming its master (xapi_session.ml);
- the message table: unknown messages are MESSAGE_METHOD_UNKNOWN, a wrong number of
  parameters MESSAGE_PARAMETER_COUNT_MISMATCH (a trailing parameter with a default may be
  left out: VM.snapshot's ignore_vdis), a parameter of the wrong type FIELD_TYPE_ERROR,
  a ref that names nothing HANDLE_INVALID (OpaqueRef:NULL included);
- generic accessors for every class: get_all, get_all_records, get_record, get_by_uuid,
  get_by_name_label, get_<field>, set_<field> for RW fields;
- VM lifecycle with VM_BAD_POWER_STATE [vm, expected, actual] and VM_IS_TEMPLATE; destroy
  from Halted or Suspended, leaving snapshots and VDIs (xapi_vm_lifecycle.ml); snapshot in
  any power state; INVALID_VALUE for VCPUs_max below VCPUs_at_startup or the reverse
  (xapi_vm.ml); vCPUs and memory limits changed only while Halted, the memory limits in
  order (xapi_vm_lifecycle.ml, xapi_vm_helpers.ml); VCPU_MAX_NOT_CORES_PER_SOCKET_MULTIPLE
  at start (vm_platform.ml);
- VDI_IN_USE for destroying an attached VDI (xapi_vdi.ml); SR_BACKEND_FAILURE_44 for a VDI
  larger than the SR's free space (sm's SRNoSpace);
- tasks: cancel makes a pending task "cancelling", its worker ends it "cancelled" with
  TASK_CANCELLED (xapi_task.ml);
- event.from tokens as XAPI makes them, EVENT_FROM_TOKEN_PARSE_FAILURE for others
  (xapi_event.ml);
- host.call_plugin: XENAPI_MISSING_PLUGIN for a plugin the host lacks (xapi_plugins.ml);
- built-in templates without disks (small_pool), as XenServer ships them;
- the HTTP handlers (handlers.py): answers before the body, outcomes only in the task,
  exports without Content-Length, 302 to the member that sees the SR, /import's SR and
  stream_vdi.ml's checks;
- a running VM's console: CONNECT /console with the session, then RFB (console.py).
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import uuid
import xmlrpc.client
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

# Derived from XAPI's published datamodel by make_datamodel.py (the classes served here).
DATAMODEL = Path(__file__).with_name("datamodel.json")
NULL = "OpaqueRef:NULL"
# Messages whose last parameter has a default (ocaml/idl/datamodel*.ml param_default), so
# older clients may leave it out: VM.snapshot's ignore_vdis (datamodel_vm.ml).
DEFAULTED: dict[str, Any] = {"VM.snapshot": []}


class Failure(Exception):
    def __init__(self, *description: str) -> None:
        super().__init__(description)
        self.description = [str(d) for d in description]


def _default(kind: str) -> Any:
    if kind.endswith(" set"):
        return []
    if kind.endswith(" map"):
        return {}
    if kind.endswith(" ref"):
        return NULL
    return {"int": 0, "float": 0.0, "bool": False, "datetime": "19700101T00:00:00Z"}.get(
        kind, "")


@dataclass
class Model:
    """Classes, their fields (name -> type, qualifier) and messages (name -> param types)."""

    fields: dict[str, dict[str, tuple[str, str]]] = field(default_factory=dict)
    messages: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = DATAMODEL) -> Model:
        model = cls()
        for name, klass in json.loads(path.read_text()).items():
            model.fields[name] = {field: (kind, qualifier)
                                  for field, kind, qualifier in klass["fields"]}
            model.messages[name] = dict(klass["messages"])
        return model


def encode(value: Any, kind: str) -> Any:
    """A Python value of datamodel type `kind` in its wire form."""
    if kind == "int":
        return str(int(value))
    if kind.endswith(" set"):
        return [encode(v, kind[:-4]) for v in value]
    if kind.endswith(" map"):
        _, _, value_kind = kind[1:-5].partition(" -> ")
        return {str(k): encode(v, value_kind) for k, v in value.items()}
    if kind == "datetime":
        return xmlrpc.client.DateTime(value)
    return value


class Xapi:
    """The state of one pool and the calls on it."""

    def __init__(self, password: str = "secret", master_address: str | None = None) -> None:
        self.model = Model.load()
        self.password = password
        self.master_address = master_address  # set: this host is a member, not the master
        self.objects: dict[str, dict[str, dict[str, Any]]] = {c: {} for c in self.model.fields}
        self.sessions: set[str] = set()
        self.lock = threading.RLock()  # reentrant: setup and handlers both record events
        self.changed = threading.Condition(self.lock)  # event.from waits on it
        self.events: list[dict[str, Any]] = []
        self.calls: list[str] = []
        self.uploads: list[bytes] = []        # what /import received, as sent
        self.disks: dict[str, bytes] = {}     # VDI ref -> its content, for byte checks
        self.guest_address = "10.0.1.99"      # what a started VM's tools report
        self.faults: dict[str, list[str]] = {}  # handler -> the error an SR fails it with
        self.cut_after: int | None = None     # downloads cut there, unknown to XAPI
        self.plugins: dict[str, set[str]] = {}  # host plugin -> its functions (every host)

    def master(self) -> str:
        pools = list(self.objects["pool"].values())
        return str(pools[0]["master"]) if pools else ""

    # -- objects ------------------------------------------------------------------------------
    def add(self, klass: str, **values: Any) -> str:
        ref = f"OpaqueRef:{uuid.uuid4()}"
        record = {name: _default(kind) for name, (kind, _) in self.model.fields[klass].items()}
        record["uuid"] = str(uuid.uuid4())
        unknown = set(values) - set(record)
        assert not unknown, f"{klass} has no fields {unknown}"
        record.update(values)
        self.objects[klass][ref] = record
        self.event(klass, ref, "add")
        return ref

    def event(self, klass: str, ref: str, operation: str) -> None:
        """Record a change for event.from (callers hold the lock, or are setting up)."""
        self.events.append({"id": len(self.events) + 1, "class": klass.lower(), "ref": ref,
                            "operation": operation})
        with self.changed:
            self.changed.notify_all()

    def _event_from(self, classes: list[str], token: str, timeout: float) -> dict[str, Any]:
        # xapi_event.ml Token: "" to start, else "%020Ld,%020Ld" (last event id, last
        # message id); anything else is EVENT_FROM_TOKEN_PARSE_FAILURE.
        if token == "":
            since = 0
        else:
            last, _, messages = token.partition(",")
            if not (last.isdigit() and messages.isdigit()):
                raise Failure("EVENT_FROM_TOKEN_PARSE_FAILURE", token)
            since = int(last)
        wanted = {c.lower() for c in classes}
        deadline = time.monotonic() + float(timeout)
        while True:
            found = [e for e in self.events if e["id"] > since and
                     ("*" in wanted or e["class"] in wanted)]
            remaining = deadline - time.monotonic()
            if found or remaining <= 0:
                break
            self.changed.wait(remaining)  # releases the lock while waiting
        events = []
        for e in found:
            klass = next(k for k in self.objects if k.lower() == e["class"])
            snapshot = self.wire_record(klass, e["ref"]) \
                if e["ref"] in self.objects[klass] else {}
            events.append({**e, "id": str(e["id"]), "timestamp": "20261124T00:00:00Z",
                           "snapshot": snapshot})
        return {"events": events, "valid_ref_counts": {},
                "token": f"{self.events[-1]['id'] if self.events else 0:020d},{0:020d}"}

    def record(self, klass: str, ref: str) -> dict[str, Any]:
        if ref not in self.objects[klass]:
            raise Failure("HANDLE_INVALID", klass, ref)
        return self.objects[klass][ref]

    def wire_record(self, klass: str, ref: str) -> dict[str, Any]:
        return {name: encode(value, self.model.fields[klass][name][0])
                for name, value in self.record(klass, ref).items()}

    # -- dispatch -----------------------------------------------------------------------------
    def call(self, method: str, params: tuple[Any, ...], host: str = "") -> Any:
        """Method `method` as served by pool host `host` (default: the master)."""
        with self.lock:
            self.calls.append(method)
            if method == "session.login_with_password":
                if host and host != self.master():
                    # xapi_session.ml: a member refuses logins, naming its master.
                    raise Failure("HOST_IS_SLAVE",
                                  self.objects["host"][self.master()]["address"])
                return self._login(*params[:2])
            klass, _, message = method.partition(".")
            if klass not in self.model.fields:
                raise Failure("MESSAGE_METHOD_UNKNOWN", method)
            session = params[0] if params else ""
            if session not in self.sessions:
                raise Failure("SESSION_INVALID", str(session))
            if method == "event.from":
                self._check_params(method, ["string set", "string", "float"],
                                   list(params[1:]))
                return self._event_from(*params[1:])
            result = self._dispatch(klass, message, list(params[1:]), method)
            if not message.startswith("get") and klass not in ("session", "event") and \
                    len(params) > 1 and isinstance(params[1], str) and \
                    params[1].startswith("OpaqueRef:"):
                # A call that acted on an object: it changed (destroyed if it is gone).
                alive = params[1] in self.objects[klass]
                self.event(klass, params[1], "mod" if alive else "del")
            return result

    def _login(self, user: str, password: str) -> str:
        if self.master_address:
            raise Failure("HOST_IS_SLAVE", self.master_address)
        if user != "root" or password != self.password:
            raise Failure("SESSION_AUTHENTICATION_FAILED", user,
                          "Authentication failure")
        session = f"OpaqueRef:{uuid.uuid4()}"
        self.sessions.add(session)
        return session

    def _check_params(self, method: str, kinds: list[str], params: list[Any]) -> None:
        if len(params) != len(kinds):
            # XAPI counts the session among the parameters.
            raise Failure("MESSAGE_PARAMETER_COUNT_MISMATCH", method, str(len(kinds) + 1),
                          str(len(params) + 1))
        for kind, value in zip(kinds, params, strict=True):
            if kind.endswith(" ref"):
                if not isinstance(value, str) or not value.startswith("OpaqueRef:"):
                    raise Failure("FIELD_TYPE_ERROR", kind)
                klass = kind[:-4]
                if klass in self.objects and value not in self.objects[klass]:
                    raise Failure("HANDLE_INVALID", klass, value)
            elif kind == "int" and not (isinstance(value, str) and value.lstrip("-").isdigit()):
                raise Failure("FIELD_TYPE_ERROR", kind)  # int64 travels as a string
            elif (kind == "bool" and not isinstance(value, bool)) or \
                    (kind == "string" and not isinstance(value, str)):
                raise Failure("FIELD_TYPE_ERROR", kind)

    def _dispatch(self, klass: str, message: str, params: list[Any], method: str) -> Any:
        fields = self.model.fields[klass]
        if message == "logout" and klass == "session":
            return ""
        if message == "get_all":
            return list(self.objects[klass])
        if message == "get_all_records":
            return {ref: self.wire_record(klass, ref) for ref in self.objects[klass]}
        declared = self.model.messages[klass].get(message)
        if declared is None and message.startswith(("get_", "set_")) and \
                message[4:] in fields and message not in ("get_record",):
            name = message[4:]
            declared = [f"{klass} ref"] + ([fields[name][0]] if message[:4] == "set_" else [])
        if declared is None and message in ("get_record", "get_by_uuid", "get_by_name_label"):
            declared = [f"{klass} ref"] if message == "get_record" else ["string"]
        if declared is None:
            raise Failure("MESSAGE_METHOD_UNKNOWN", method)
        declared = declared[1:] if declared[:1] == ["session ref"] else declared
        if len(params) == len(declared) - 1 and method in DEFAULTED:
            # A trailing parameter with a param_default in the datamodel may be left out.
            params = [*params, DEFAULTED[method]]
        self._check_params(method, declared, params)
        handler = getattr(self, f"{klass}_{message}", None)
        if handler is not None:  # XAPI's own implementation of a declared message
            result = handler(*params)
            return "" if result is None else result
        if message == "get_record":
            return self.wire_record(klass, params[0])
        if message == "get_by_uuid":
            for ref, record in self.objects[klass].items():
                if record["uuid"] == params[0]:
                    return ref
            raise Failure("UUID_INVALID", klass, params[0])
        if message == "get_by_name_label":
            return [ref for ref, record in self.objects[klass].items()
                    if record.get("name_label") == params[0]]
        if message.startswith("get_") and message[4:] in fields:
            name = message[4:]
            return encode(self.record(klass, params[0])[name], fields[name][0])
        if message.startswith("set_") and message[4:] in fields:
            if fields[message[4:]][1] != "RW":
                raise Failure("FIELD_TYPE_ERROR", message[4:])
            value = params[1]
            self.record(klass, params[0])[message[4:]] = \
                int(value) if fields[message[4:]][0] == "int" else value
            return ""
        for prefix in ("add_to_", "remove_from_"):
            name = message.removeprefix(prefix)
            if message.startswith(prefix) and fields.get(name, ("", ""))[0].endswith(" map"):
                target = self.record(klass, params[0])[name]
                if prefix == "add_to_":
                    if params[1] in target:
                        raise Failure("MAP_DUPLICATE_KEY", klass, name, params[0], params[1])
                    target[params[1]] = params[2]
                else:
                    target.pop(params[1], None)
                return ""
        handler = getattr(self, f"{klass}_{message}", None)
        if handler is None:
            raise Failure("MESSAGE_METHOD_UNKNOWN", method)
        result = handler(*params)
        return "" if result is None else result

    # -- VM lifecycle -------------------------------------------------------------------------
    def _power(self, vm: str, expected: str, new: str) -> None:
        record = self.record("VM", vm)
        if record["is_a_template"]:
            raise Failure("VM_IS_TEMPLATE", vm)
        if record["power_state"] != expected:
            raise Failure("VM_BAD_POWER_STATE", vm, expected.lower(),
                          record["power_state"].lower())
        self._set_power(vm, new)

    def _set_power(self, vm: str, new: str) -> None:
        """A running or paused VM has its VBDs and VIFs attached (currently_attached), which
        keeps their VDIs from being destroyed and them from being destroyed unplugged."""
        record = self.record("VM", vm)
        record["power_state"] = new
        for klass, devices in (("VBD", record["VBDs"]), ("VIF", record["VIFs"])):
            for device in devices:
                if device in self.objects[klass]:
                    self.objects[klass][device]["currently_attached"] = \
                        new in ("Running", "Paused")

    def VM_start(self, vm: str, start_paused: bool, force: bool) -> None:
        record = self.record("VM", vm)
        per_socket = record["platform"].get("cores-per-socket")
        if per_socket and not record["is_a_template"] and \
                record["VCPUs_max"] % int(per_socket):
            # vm_platform.ml sanity_check: VCPUs_max must be a multiple of cores-per-socket.
            raise Failure("VCPU_MAX_NOT_CORES_PER_SOCKET_MULTIPLE", str(record["VCPUs_max"]),
                          per_socket)
        self._power(vm, "Halted", "Paused" if start_paused else "Running")
        if self.guest_address and record["guest_metrics"] == NULL:
            # The guest's tools report its address a moment after boot.
            record["guest_metrics"] = self.add("VM_guest_metrics",
                                               networks={"0/ip": self.guest_address})

    def VM_clean_shutdown(self, vm: str) -> None:
        self._power(vm, "Running", "Halted")

    def VM_hard_shutdown(self, vm: str) -> None:
        record = self.record("VM", vm)
        if record["power_state"] == "Halted":
            raise Failure("VM_BAD_POWER_STATE", vm, "running", "halted")
        self._set_power(vm, "Halted")

    def VM_clean_reboot(self, vm: str) -> None:
        self._power(vm, "Running", "Running")

    def VM_pause(self, vm: str) -> None:
        self._power(vm, "Running", "Paused")

    def VM_unpause(self, vm: str) -> None:
        self._power(vm, "Paused", "Running")

    def VM_clone(self, vm: str, new_name: str) -> str:
        source = self.record("VM", vm)
        if source["power_state"] != "Halted":
            raise Failure("VM_BAD_POWER_STATE", vm, "halted", source["power_state"].lower())
        # xapi_vm_clone.ml copies the record, other_config included.
        values = {k: copy.deepcopy(v) for k, v in source.items()
                  if k not in ("uuid", "VBDs", "VIFs")}
        clone = self.add("VM", **{**values, "name_label": new_name})
        self._copy_disks(vm, clone)  # copy-on-write clones of the disks, here plain copies
        return clone

    def _copy_disks(self, source: str, target: str) -> None:
        """Give VM `target` copies of `source`'s disks (XAPI: clone or copy of each VDI) and
        of its network interfaces."""
        for vif in self.record("VM", source)["VIFs"]:
            old = self.record("VIF", vif)
            self.objects["VM"][target]["VIFs"].append(
                self.add("VIF", VM=target, network=old["network"], device=old["device"],
                         MTU=old["MTU"]))
        for vbd in self.record("VM", source)["VBDs"]:
            old = self.record("VBD", vbd)
            vdi = old["VDI"]
            if vdi != NULL:
                original = self.record("VDI", vdi)
                vdi = self.add("VDI", name_label=original["name_label"],
                               virtual_size=original["virtual_size"], SR=original["SR"],
                               type=original["type"])
                self.disks[vdi] = self.disks.get(old["VDI"], b"")
            self.objects["VM"][target]["VBDs"].append(
                self.add("VBD", VM=target, VDI=vdi, type=old["type"],
                         userdevice=old["userdevice"], bootable=old["bootable"],
                         mode=old["mode"]))

    def VM_snapshot(self, vm: str, new_name: str, ignore_vdis: list[str]) -> str:
        source = self.record("VM", vm)
        if source["is_a_template"]:
            raise Failure("VM_IS_TEMPLATE", vm)
        # xapi_vm_lifecycle.ml allows snapshot in every power state (a suspended VM's is
        # taken with its suspend image).
        values = {k: v for k, v in source.items()
                  if k not in ("uuid", "VBDs", "VIFs", "snapshots", "guest_metrics")}
        snapshot = self.add("VM", **{**values, "name_label": new_name, "is_a_template": True,
                                     "is_a_snapshot": True, "snapshot_of": vm,
                                     "power_state": "Halted"})
        self._copy_disks(vm, snapshot)
        source["snapshots"].append(snapshot)
        self.event("VM", vm, "mod")
        return snapshot

    def VM_revert(self, snapshot: str) -> None:
        record = self.record("VM", snapshot)
        if not record["is_a_snapshot"]:
            raise Failure("VM_REVERT_FAILED", snapshot, "not a snapshot")
        vm = record["snapshot_of"]
        target = self.record("VM", vm)
        mine = [self.record("VBD", v)["VDI"] for v in target["VBDs"]]
        theirs = [self.record("VBD", v)["VDI"] for v in record["VBDs"]]
        for current, saved in zip(mine, theirs, strict=False):
            if current != NULL and saved != NULL:
                self.disks[current] = self.disks.get(saved, b"")
        self._set_power(vm, "Halted")  # a disk-only snapshot: the VM comes back halted
        self.event("VM", vm, "mod")

    def VM_suspend(self, vm: str) -> None:
        self._power(vm, "Running", "Suspended")

    def VM_resume(self, vm: str, start_paused: bool, force: bool) -> None:
        self._power(vm, "Suspended", "Paused" if start_paused else "Running")

    def VM_copy(self, vm: str, new_name: str, sr: str) -> str:
        source = self.record("VM", vm)
        if source["power_state"] != "Halted":
            raise Failure("VM_BAD_POWER_STATE", vm, "halted", source["power_state"].lower())
        values = {k: copy.deepcopy(v) for k, v in source.items()
                  if k not in ("uuid", "VBDs", "VIFs", "snapshots")}
        new = self.add("VM", **{**values, "name_label": new_name})
        self._copy_disks(vm, new)
        return new

    def VM_provision(self, vm: str) -> None:
        if not self.record("VM", vm)["is_a_template"]:
            raise Failure("PROVISION_ONLY_ALLOWED_ON_TEMPLATE", vm)

    def _halted_only(self, vm: str) -> dict[str, Any]:
        """xapi_vm_lifecycle.ml allowed_power_states: changing_VCPUs and
        changing_memory_limits are allowed only on a Halted VM (message_forwarding.ml runs
        set_VCPUs_max, set_VCPUs_at_startup and set_memory_limits as those operations)."""
        record = self.record("VM", vm)
        if record["power_state"] != "Halted":
            raise Failure("VM_BAD_POWER_STATE", vm, "halted", record["power_state"].lower())
        return record

    def VM_set_VCPUs_max(self, vm: str, value: str) -> None:
        # xapi_vm.ml set_VCPUs_max: for a VM (templates are exempt),
        # 0 < VCPUs_at_startup <= VCPUs_max must hold after the change.
        record = self._halted_only(vm)
        if not record["is_a_template"] and not \
                0 < record["VCPUs_at_startup"] <= int(value):
            raise Failure("INVALID_VALUE", "VCPU values must satisfy: 0 < VCPUs_at_startup "
                          "≤ VCPUs_max", value)
        record["VCPUs_max"] = int(value)

    def VM_set_VCPUs_at_startup(self, vm: str, value: str) -> None:
        # xapi_vm.ml set_VCPUs_at_startup: the same rule, from the other side.
        record = self._halted_only(vm)
        if not record["is_a_template"] and not 0 < int(value) <= record["VCPUs_max"]:
            raise Failure("INVALID_VALUE", "VCPU values must satisfy: 0 < VCPUs_at_startup "
                          "≤ VCPUs_max", value)
        record["VCPUs_at_startup"] = int(value)

    def VM_set_memory_limits(self, vm: str, static_min: str, static_max: str,
                             dynamic_min: str, dynamic_max: str) -> None:
        # xapi_vm_helpers.ml validate_memory: the four in order (Vm_memory_constraints).
        record = self._halted_only(vm)
        values = [int(v) for v in (static_min, dynamic_min, dynamic_max, static_max)]
        if values != sorted(values):
            raise Failure("MEMORY_CONSTRAINT_VIOLATION", "static_min <= dynamic_min <= "
                          "dynamic_max <= static_max")
        record.update(memory_static_min=values[0], memory_dynamic_min=values[1],
                                     memory_dynamic_max=values[2], memory_static_max=values[3])

    def VDI_create(self, args: dict[str, Any]) -> str:
        fields = self.model.fields["VDI"]
        unknown = set(args) - set(fields)
        if unknown:
            raise Failure("FIELD_TYPE_ERROR", sorted(unknown)[0])
        values = {k: int(v) if fields[k][0] == "int" else v for k, v in args.items()}
        if values.get("SR", NULL) not in self.objects["SR"]:
            raise Failure("HANDLE_INVALID", "SR", str(values.get("SR")))
        sr = self.record("SR", values["SR"])
        free = sr["physical_size"] - sr["physical_utilisation"]
        if sr["physical_size"] and values.get("virtual_size", 0) > free:
            # The SR drivers (sm: FileSR, LVHDSR...) raise xs_errors "SRNoSpace", code 44,
            # which xapi_vdi.ml create passes on as SR_BACKEND_FAILURE_44.
            raise Failure("SR_BACKEND_FAILURE_44", "", "There is insufficient space", "")
        return self.add("VDI", **values)

    def VIF_create(self, args: dict[str, Any]) -> str:
        fields = self.model.fields["VIF"]
        unknown = set(args) - set(fields)
        if unknown:
            raise Failure("FIELD_TYPE_ERROR", sorted(unknown)[0])
        for name in ("device", "network", "VM", "MAC", "MTU", "other_config",
                     "qos_algorithm_type", "qos_algorithm_params"):
            if name not in args:  # XAPI's create needs every constructor field
                raise Failure("FIELD_TYPE_ERROR", name)
        vm, network = args["VM"], args["network"]
        if vm not in self.objects["VM"]:
            raise Failure("HANDLE_INVALID", "VM", vm)
        if network not in self.objects["network"]:
            raise Failure("HANDLE_INVALID", "network", network)
        if any(self.record("VIF", v)["device"] == args["device"]
               for v in self.record("VM", vm)["VIFs"]):
            raise Failure("DEVICE_ALREADY_EXISTS", args["device"])
        if not args["MAC"]:
            # xapi_vif_helpers.ml gen_mac: a random, locally administered unicast MAC.
            args = {**args, "MAC": ":".join(["02", *(f"{b:02x}" for b in os.urandom(5))])}
        vif = self.add("VIF", **{k: int(v) if fields[k][0] == "int" else v
                                 for k, v in args.items()})
        self.record("VM", vm)["VIFs"].append(vif)
        return vif

    def VIF_destroy(self, vif: str) -> None:
        if self.record("VIF", vif)["currently_attached"]:
            raise Failure("OPERATION_NOT_ALLOWED", "VIF is currently attached")
        vm = self.record("VIF", vif)["VM"]
        if vm in self.objects["VM"]:
            self.record("VM", vm)["VIFs"].remove(vif)
        del self.objects["VIF"][vif]

    def VDI_resize(self, vdi: str, size: str) -> None:
        # xapi_vdi.ml check_operation_error: an offline resize is refused while a VBD has the
        # VDI attached (a running VM's disk): VDI_IN_USE; resize_online is for that.
        record = self.record("VDI", vdi)
        if any(v["VDI"] == vdi and v["currently_attached"]
               for v in self.objects["VBD"].values()):
            raise Failure("VDI_IN_USE", vdi, "resize")
        self._resize(vdi, record, size)

    def VDI_resize_online(self, vdi: str, size: str) -> None:
        self._resize(vdi, self.record("VDI", vdi), size)

    @staticmethod
    def _resize(vdi: str, record: dict[str, Any], size: str) -> None:
        # The SR drivers never shrink a VDI (sm: VDISize "shrinking not allowed").
        if int(size) < record["virtual_size"]:
            raise Failure("VDI_TOO_SMALL", vdi, size)
        record["virtual_size"] = int(size)

    def VDI_get_VBDs(self, vdi: str) -> list[str]:
        # XAPI keeps a VDI's VBDs as the other end of VBD.VDI (a set it maintains itself).
        self.record("VDI", vdi)
        return [ref for ref, v in self.objects["VBD"].items() if v["VDI"] == vdi]

    def VDI_destroy(self, vdi: str) -> None:
        # xapi_vdi.ml check_operation_error: not while a VBD has it attached (VDI_IN_USE);
        # destroy then removes the VDI's VBDs itself.
        self.record("VDI", vdi)
        vbds = [r for r, v in self.objects["VBD"].items() if v["VDI"] == vdi]
        if any(self.objects["VBD"][v]["currently_attached"] for v in vbds):
            raise Failure("VDI_IN_USE", vdi, "destroy")
        for vbd in vbds:
            owner = self.objects["VBD"].pop(vbd)["VM"]
            if owner in self.objects["VM"] and vbd in self.objects["VM"][owner]["VBDs"]:
                self.objects["VM"][owner]["VBDs"].remove(vbd)
        del self.objects["VDI"][vdi]
        self.disks.pop(vdi, None)

    def VBD_create(self, args: dict[str, Any]) -> str:
        fields = self.model.fields["VBD"]
        unknown = set(args) - set(fields)
        if unknown:
            raise Failure("FIELD_TYPE_ERROR", sorted(unknown)[0])
        for klass, key in (("VM", "VM"), ("VDI", "VDI")):
            if args.get(key) not in self.objects[klass] and not (key == "VDI" and
                                                                  args.get("empty")):
                raise Failure("HANDLE_INVALID", klass, str(args.get(key)))
        if args.get("userdevice") == "autodetect":
            # xapi_vbd_helpers.ml: the lowest device number the VM does not use.
            used = {self.record("VBD", v)["userdevice"] for v in self.record("VM", args["VM"])[
                "VBDs"]}
            args = {**args, "userdevice": next(str(n) for n in range(256) if str(n) not in used)}
        vbd = self.add("VBD", **args)
        self.record("VM", args["VM"])["VBDs"].append(vbd)
        return vbd

    # -- hot-plug and removable media (xapi_vbd.ml, xapi_vif.ml) -----------------------------
    def _running_owner(self, klass: str, ref: str) -> dict[str, Any]:
        """The device's record; VM_BAD_POWER_STATE unless its VM runs (plug/unplug are for
        a running VM: xapi_vbd_helpers.ml valid_operations)."""
        record = self.record(klass, ref)
        vm = self.record("VM", record["VM"])
        if vm["power_state"] != "Running":
            raise Failure("VM_BAD_POWER_STATE", record["VM"], "running",
                          vm["power_state"].lower())
        return record

    def VBD_plug(self, vbd: str) -> None:
        record = self._running_owner("VBD", vbd)
        if record["currently_attached"]:
            raise Failure("DEVICE_ALREADY_ATTACHED", vbd)
        record["currently_attached"] = True

    def VBD_unplug(self, vbd: str) -> None:
        record = self._running_owner("VBD", vbd)
        if not record["currently_attached"]:
            raise Failure("DEVICE_ALREADY_DETACHED", vbd)
        record["currently_attached"] = False

    def VBD_destroy(self, vbd: str) -> None:
        # Not while attached (xapi_vbd_helpers.ml: destroy needs it unplugged).
        record = self.record("VBD", vbd)
        if record["currently_attached"]:
            raise Failure("OPERATION_NOT_ALLOWED", "VBD is currently attached")
        if record["VM"] in self.objects["VM"]:
            self.record("VM", record["VM"])["VBDs"].remove(vbd)
        del self.objects["VBD"][vbd]

    def VBD_insert(self, vbd: str, vdi: str) -> None:
        record = self.record("VBD", vbd)
        self.record("VDI", vdi)
        if record["type"] != "CD":
            raise Failure("VBD_NOT_REMOVABLE_MEDIA", vbd)
        if not record["empty"]:
            raise Failure("VBD_NOT_EMPTY", vbd)
        record.update(VDI=vdi, empty=False)

    def VBD_eject(self, vbd: str) -> None:
        record = self.record("VBD", vbd)
        if record["type"] != "CD":
            raise Failure("VBD_NOT_REMOVABLE_MEDIA", vbd)
        if record["empty"]:
            raise Failure("VBD_IS_EMPTY", vbd)
        record.update(VDI=NULL, empty=True)

    def VIF_plug(self, vif: str) -> None:
        record = self._running_owner("VIF", vif)
        if record["currently_attached"]:
            raise Failure("DEVICE_ALREADY_ATTACHED", vif)
        record["currently_attached"] = True

    def VIF_unplug(self, vif: str) -> None:
        record = self._running_owner("VIF", vif)
        if not record["currently_attached"]:
            raise Failure("DEVICE_ALREADY_DETACHED", vif)
        record["currently_attached"] = False

    def VM_destroy(self, vm: str) -> None:
        # xapi_vm_lifecycle.ml: destroy is allowed Halted or Suspended.  It leaves the VM's
        # snapshots (their snapshot_of then names nothing) and its VDIs.
        record = self.record("VM", vm)
        if record["power_state"] not in ("Halted", "Suspended"):
            raise Failure("VM_BAD_POWER_STATE", vm, "halted", record["power_state"].lower())
        for vbd in record["VBDs"]:
            self.objects["VBD"].pop(vbd, None)
        for vif in record["VIFs"]:  # a VM's interfaces go with it, its disks do not
            self.objects["VIF"].pop(vif, None)
        del self.objects["VM"][vm]

    def host_call_plugin(self, host: str, plugin: str, fn: str, args: dict[str, str]) -> str:
        # xapi_plugins.ml: a plugin not in /etc/xapi.d/plugins is XENAPI_MISSING_PLUGIN; a
        # function the plugin lacks is the plugin's own failure (XenAPIPlugin.dispatch).
        self.record("host", host)
        if plugin not in self.plugins:
            raise Failure("XENAPI_MISSING_PLUGIN", plugin)
        if fn not in self.plugins[plugin]:
            raise Failure("XENAPI_PLUGIN_FAILURE", fn, "UnknownMethod", fn)
        return ""

    # -- tasks ----------------------------------------------------------------------------------
    def task_create(self, label: str, description: str) -> str:
        return self.add("task", name_label=label, name_description=description,
                        status="pending", progress=0.0)

    def task_cancel(self, task: str) -> None:
        # xapi_task.ml cancel: a pending task becomes "cancelling"; the worker doing it
        # notices (TaskHelper.exn_if_cancelling) and ends it "cancelled" with TASK_CANCELLED.
        record = self.record("task", task)
        if record["status"] == "pending":
            record["status"] = "cancelling"

    def task_destroy(self, task: str) -> None:
        self.record("task", task)
        del self.objects["task"][task]

class _Handler(BaseHTTPRequestHandler):
    xapi: Xapi
    host: str  # the pool host this endpoint is (a member's endpoint redirects its logins)
    scheme: str

    def _serve(self, method: str) -> None:
        from urllib.parse import parse_qsl, urlsplit

        from tests.xapi import handlers
        parts = urlsplit(self.path)
        route = handlers.HANDLERS.get((method, parts.path))
        if route is None:
            self.send_error(404)
            return
        query = dict(parse_qsl(parts.query))
        with self.xapi.lock:
            before = set(self.xapi.objects["task"])
            answer = route(self.xapi, query, self.host or self.xapi.master())
            if not isinstance(answer, handlers.Accept):  # with_context's own task goes too
                for task in set(self.xapi.objects["task"]) - before:
                    if self.xapi.objects["task"][task]["other_config"].get("handler-own"):
                        del self.xapi.objects["task"][task]
        self.close_connection = True  # XAPI's handlers set req.close
        if isinstance(answer, handlers.Refuse):
            # Answered before the body, which is never read (the client sees a reset).
            self.send_response(answer.status)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if isinstance(answer, handlers.Redirect):
            # importexport.ml return_302_redirect: same path and query, the member's address.
            self.send_response(302)
            self.send_header("Location", f"{self.scheme}://{answer.address}{self.path}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        # Http.http_200_ok ~keep_alive:false, with the task: no Content-Length, sent first.
        self.send_response(200)
        self.send_header("Connection", "close")
        self.send_header("task-id", answer.task)
        self.end_headers()
        self.wfile.flush()
        try:
            if method == "PUT":
                result = answer.work(self.rfile, int(self.headers.get("Content-Length", 0)))
            else:
                result = self._stream(answer.task, answer.work())
        except Failure as failure:
            status, info, result = "failure", failure.description, ""
            if failure.description[0] == "TASK_CANCELLED":
                status = "cancelled"
        except OSError as exc:  # the client went away
            status, info, result = "failure", ["INTERNAL_ERROR", str(exc)], ""
        else:
            status, info = "success", []
        with self.xapi.lock:
            record = self.xapi.objects["task"].get(answer.task)
            if record is not None:
                if record["other_config"].get("handler-own"):
                    del self.xapi.objects["task"][answer.task]  # with_context's own task
                else:
                    record.update(status=status, error_info=info, result=result,
                                  progress=1.0 if status == "success" else record["progress"])
                    self.xapi.event("task", answer.task, "mod")

    def _stream(self, task: str, data: bytes) -> str:
        """Send an export in pieces; an SR failure (xapi.faults) stops it halfway and a cut
        (xapi.cut_after) ends it early without XAPI knowing."""
        from tests.xapi import handlers
        fault = self.xapi.faults.get(self.path.partition("?")[0])
        stop = len(data) // 2 if fault else len(data)
        if self.xapi.cut_after is not None:
            stop = min(stop, self.xapi.cut_after)
        for offset in range(0, stop, 1 << 16):
            handlers.check_cancel(self.xapi, task)
            self.wfile.write(data[offset:min(stop, offset + (1 << 16))])
        if fault:
            raise Failure(*fault)
        return ""

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_CONNECT(self) -> None:
        """XAPI's console handler (tests/xapi/console.py): 200, then RFB on the connection."""
        from urllib.parse import parse_qsl, urlsplit

        from tests.xapi import console
        parts = urlsplit(self.path)
        with self.xapi.lock:
            self.xapi.calls.append(f"CONNECT {parts.path}")
            status, reason, name = console.find(self.xapi, dict(parse_qsl(parts.query))) \
                if parts.path == "/console" else (404, "Not Found", "")
        self.close_connection = True
        # Http.http_200_ok: the status line and an empty head, then the display's bytes.
        self.wfile.write(f"HTTP/1.1 {status} {reason}\r\n\r\n".encode())
        self.wfile.flush()
        if status == 200:
            console.serve_rfb(self.rfile, self.wfile, name)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        params, method = xmlrpc.client.loads(body, use_builtin_types=True)
        try:
            value = self.xapi.call(str(method), params, self.host)
            answer: dict[str, Any] = {"Status": "Success", "Value": value}
        except Failure as failure:
            answer = {"Status": "Failure", "ErrorDescription": failure.description}
        data = xmlrpc.client.dumps((answer,), methodresponse=True, allow_none=False).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Running:
    xapi: Xapi
    url: str
    server: ThreadingHTTPServer

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start(xapi: Xapi, tls: tuple[Path, Path] | None = None, host: str = "") -> Running:
    """Serve `xapi` on a loopback port; over HTTPS with (certificate, key) as XAPI does; as
    pool host `host` (default: the master)."""
    import ssl
    scheme = "http" if tls is None else "https"
    handler = type("Handler", (_Handler,), {"xapi": xapi, "host": host, "scheme": scheme})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Running(xapi, f"{scheme}://127.0.0.1:{server.server_address[1]}", server)


def self_signed(directory: Path, name: str = "xcp1.lab") -> tuple[Path, Path]:
    """A self-signed certificate like the one a XenServer host makes for itself."""
    import subprocess
    cert, key = directory / f"{name}.pem", directory / f"{name}.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", f"/CN={name}", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def small_pool(xapi: Xapi) -> dict[str, str]:
    """A pool of one host with local storage (attached there), a network, the control domain,
    one of XenServer's built-in templates (no disk: it installs from media), a template of the
    pool's own with a disk, and two VMs (one running with guest metrics): the refs by role."""
    metrics = xapi.add("host_metrics", memory_total=64 << 30, memory_free=40 << 30, live=True)
    host = xapi.add("host", name_label="xcp1", address="10.0.0.11", hostname="xcp1",
                    metrics=metrics, cpu_info={"cpu_count": "16", "modelname": "Xeon"},
                    software_version={"product_brand": "XCP-ng", "product_version": "8.3.0"},
                    API_version_major=2, API_version_minor=21, enabled=True)
    pool = xapi.add("pool", name_label="lab", master=host)
    sr = xapi.add("SR", name_label="Local storage", type="ext", content_type="user",
                  physical_size=500 << 30, physical_utilisation=120 << 30, shared=False)
    xapi.objects["pool"][pool]["default_SR"] = sr
    pbd = xapi.add("PBD", host=host, SR=sr, currently_attached=True)
    xapi.objects["SR"][sr]["PBDs"] = [pbd]
    xapi.objects["host"][host]["PBDs"] = [pbd]
    network = xapi.add("network", name_label="Pool-wide network", bridge="xenbr0")
    xapi.add("network", name_label="lab-vlan-20", bridge="xapi1")
    dom0 = xapi.add("VM", name_label="Control domain on host: xcp1", is_control_domain=True,
                    power_state="Running", resident_on=host)
    # As XenServer ships them: marked, diskless, the disks to make described for
    # VM.provision and the installer's sources listed (xapi's create_templates.ml).
    builtin = xapi.add("VM", name_label="Debian Bookworm 12", is_a_template=True,
                       is_default_template=True, power_state="Halted", VCPUs_max=1,
                       VCPUs_at_startup=1, memory_static_max=1 << 30,
                       other_config={"default_template": "true",
                                     "install-methods": "cdrom,nfs,http,ftp",
                                     "disks": '<provision><disk device="0" size="10737418240" '
                                              'sr="" bootable="true" type="system"/>'
                                              '</provision>'})
    template = xapi.add("VM", name_label="debian-12", is_a_template=True,
                        power_state="Halted", VCPUs_max=1, VCPUs_at_startup=1,
                        memory_static_max=1 << 30)
    template_disk = xapi.add("VDI", name_label="debian root", SR=sr, virtual_size=10 << 30)
    xapi.objects["VM"][template]["VBDs"] = [
        xapi.add("VBD", VM=template, VDI=template_disk, type="Disk", userdevice="0",
                 bootable=True, mode="RW")]
    xapi.objects["VM"][template]["VIFs"] = [
        xapi.add("VIF", VM=template, network=network, device="0", MTU=1500)]
    guest_metrics = xapi.add("VM_guest_metrics", networks={"0/ip": "10.0.1.20",
                                                           "0/ipv6/0": "fe80::1"})
    web = xapi.add("VM", name_label="web-1", power_state="Running", resident_on=host,
                   VCPUs_max=2, VCPUs_at_startup=2, memory_static_max=2 << 30,
                   guest_metrics=guest_metrics)
    # Its display, where XAPI says it is: on the host it runs on (xapi_console.ml).
    console = xapi.add("console", protocol="rfb", VM=web)
    record = xapi.objects["console"][console]
    record["location"] = f"https://10.0.0.11/console?uuid={record['uuid']}"
    xapi.objects["VM"][web]["consoles"] = [console]
    db = xapi.add("VM", name_label="db-1", power_state="Halted", VCPUs_max=4,
                  VCPUs_at_startup=4, memory_static_max=8 << 30)
    return {"host": host, "pool": pool, "sr": sr, "network": network, "dom0": dom0,
            "template": template, "builtin": builtin, "web": web, "db": db}


def add_member(xapi: Xapi, tls: tuple[Path, Path] | None = None) -> tuple[str, str, Running]:
    """A second host in the pool with local storage of its own (attached only there), served
    on an endpoint of its own (its address is where XAPI's redirects point): the host, its
    SR and the endpoint.  With `tls`, its certificate is listed as XAPI lists hosts'
    (Certificate, type host, SHA-256 fingerprint)."""
    import hashlib
    import ssl
    host = xapi.add("host", name_label="xcp2", hostname="xcp2", enabled=True,
                    metrics=xapi.add("host_metrics", memory_total=32 << 30,
                                     memory_free=30 << 30, live=True),
                    cpu_info={"cpu_count": "8", "modelname": "Xeon"},
                    software_version={"product_brand": "XCP-ng", "product_version": "8.3.0"})
    running = start(xapi, tls, host=host)
    xapi.objects["host"][host]["address"] = running.url.split("://", 1)[1]
    sr = xapi.add("SR", name_label="Local storage on xcp2", type="ext", content_type="user",
                  physical_size=200 << 30, physical_utilisation=0, shared=False)
    pbd = xapi.add("PBD", host=host, SR=sr, currently_attached=True)
    xapi.objects["SR"][sr]["PBDs"] = [pbd]
    xapi.objects["host"][host]["PBDs"] = [pbd]
    if tls is not None:
        der = ssl.PEM_cert_to_DER_cert(tls[0].read_text())
        digest = hashlib.sha256(der).hexdigest().upper()
        # certificates.ml pp_fingerprint: hex byte pairs joined by colons.
        xapi.add("Certificate", host=host, type="host",
                 fingerprint=":".join(digest[i:i + 2] for i in range(0, len(digest), 2)))
    return host, sr, running
