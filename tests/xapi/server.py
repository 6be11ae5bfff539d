"""A loopback XAPI for tests: XML-RPC over HTTP, built from XAPI's published datamodel
(datamodel.json, derived from xapi-project/xen-api's doc/data/xenapi.json by
make_datamodel.py) and wire protocol, so that the official `XenAPI` SDK talks to it unchanged.

What it enforces, as XAPI does for the calls it serves:
- the envelope: every answer is a struct {Status: Success, Value} or {Status: Failure,
  ErrorDescription: [code, params...]}; `void` is ""; `int` travels as a string of digits;
- sessions: every call but login needs a live session (SESSION_INVALID otherwise);
  SESSION_AUTHENTICATION_FAILED for a wrong password; a pool member answers login with
  HOST_IS_SLAVE naming its master;
- the message table: unknown messages are MESSAGE_METHOD_UNKNOWN, a wrong number of
  parameters MESSAGE_PARAMETER_COUNT_MISMATCH, a parameter of the wrong type FIELD_TYPE_ERROR,
  a ref that names nothing HANDLE_INVALID (OpaqueRef:NULL included);
- generic accessors for every class: get_all, get_all_records, get_record, get_by_uuid,
  get_by_name_label, get_<field>, set_<field> for RW fields;
- VM lifecycle with VM_BAD_POWER_STATE [vm, expected, actual] and VM_IS_TEMPLATE.
"""

from __future__ import annotations

import json
import tempfile
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
        since = int(token) if token.isdigit() else 0
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
                "token": str(self.events[-1]["id"] if self.events else 0)}

    def record(self, klass: str, ref: str) -> dict[str, Any]:
        if ref not in self.objects[klass]:
            raise Failure("HANDLE_INVALID", klass, ref)
        return self.objects[klass][ref]

    def wire_record(self, klass: str, ref: str) -> dict[str, Any]:
        return {name: encode(value, self.model.fields[klass][name][0])
                for name, value in self.record(klass, ref).items()}

    # -- dispatch -----------------------------------------------------------------------------
    def call(self, method: str, params: tuple[Any, ...]) -> Any:
        with self.lock:
            self.calls.append(method)
            if method == "session.login_with_password":
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
        self._check_params(method, declared[1:] if declared[:1] == ["session ref"]
                           else declared, params)
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
        record["power_state"] = new

    def VM_start(self, vm: str, start_paused: bool, force: bool) -> None:
        self._power(vm, "Halted", "Paused" if start_paused else "Running")
        record = self.record("VM", vm)
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
        record["power_state"] = "Halted"

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
        values = {k: v for k, v in source.items() if k not in ("uuid", "VBDs", "VIFs")}
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
        if source["power_state"] == "Suspended":
            raise Failure("VM_BAD_POWER_STATE", vm, "running", "suspended")
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
        target["power_state"] = "Halted"  # a disk-only snapshot: the VM comes back halted
        self.event("VM", vm, "mod")

    def VM_suspend(self, vm: str) -> None:
        self._power(vm, "Running", "Suspended")

    def VM_resume(self, vm: str, start_paused: bool, force: bool) -> None:
        self._power(vm, "Suspended", "Paused" if start_paused else "Running")

    def VM_copy(self, vm: str, new_name: str, sr: str) -> str:
        source = self.record("VM", vm)
        if source["power_state"] != "Halted":
            raise Failure("VM_BAD_POWER_STATE", vm, "halted", source["power_state"].lower())
        values = {k: v for k, v in source.items()
                  if k not in ("uuid", "VBDs", "VIFs", "snapshots")}
        copy = self.add("VM", **{**values, "name_label": new_name})
        self._copy_disks(vm, copy)
        return copy

    def VM_provision(self, vm: str) -> None:
        if not self.record("VM", vm)["is_a_template"]:
            raise Failure("PROVISION_ONLY_ALLOWED_ON_TEMPLATE", vm)

    def VM_set_VCPUs_max(self, vm: str, value: str) -> None:
        self.record("VM", vm)["VCPUs_max"] = int(value)

    def VM_set_VCPUs_at_startup(self, vm: str, value: str) -> None:
        record = self.record("VM", vm)
        if int(value) > record["VCPUs_max"]:
            raise Failure("VCPUS_AT_STARTUP_GREATER_THAN_MAX", value)
        record["VCPUs_at_startup"] = int(value)

    def VM_set_memory_limits(self, vm: str, static_min: str, static_max: str,
                             dynamic_min: str, dynamic_max: str) -> None:
        values = [int(v) for v in (static_min, dynamic_min, dynamic_max, static_max)]
        if values != sorted(values):
            raise Failure("MEMORY_CONSTRAINT_VIOLATION", "static_min <= dynamic_min <= "
                          "dynamic_max <= static_max")
        self.record("VM", vm).update(memory_static_min=values[0], memory_dynamic_min=values[1],
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
            raise Failure("SR_FULL", str(values["virtual_size"]), str(free))
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
        vif = self.add("VIF", **{k: int(v) if fields[k][0] == "int" else v
                                 for k, v in args.items()})
        self.record("VM", vm)["VIFs"].append(vif)
        return vif

    def VIF_destroy(self, vif: str) -> None:
        vm = self.record("VIF", vif)["VM"]
        if vm in self.objects["VM"]:
            self.record("VM", vm)["VIFs"].remove(vif)
        del self.objects["VIF"][vif]

    def VDI_resize(self, vdi: str, size: str) -> None:
        record = self.record("VDI", vdi)
        if int(size) < record["virtual_size"]:
            raise Failure("VDI_TOO_SMALL", vdi, size)
        record["virtual_size"] = int(size)

    def VDI_destroy(self, vdi: str) -> None:
        self.record("VDI", vdi)
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
        vbd = self.add("VBD", **args)
        self.record("VM", args["VM"])["VBDs"].append(vbd)
        return vbd

    def VM_destroy(self, vm: str) -> None:
        record = self.record("VM", vm)
        if record["power_state"] != "Halted":
            raise Failure("VM_BAD_POWER_STATE", vm, "halted", record["power_state"].lower())
        for vbd in record["VBDs"]:
            self.objects["VBD"].pop(vbd, None)
        for vif in record["VIFs"]:  # a VM's interfaces go with it, its disks do not
            self.objects["VIF"].pop(vif, None)
        del self.objects["VM"][vm]

    # -- tasks ----------------------------------------------------------------------------------
    def task_create(self, label: str, description: str) -> str:
        return self.add("task", name_label=label, name_description=description,
                        status="pending", progress=0.0)

    def task_cancel(self, task: str) -> None:
        record = self.record("task", task)
        if record["status"] == "pending":
            record["status"] = "cancelled"

    def task_destroy(self, task: str) -> None:
        self.record("task", task)
        del self.objects["task"][task]

    # -- the /import HTTP handler ---------------------------------------------------------------
    def http_import(self, query: dict[str, str], body: bytes, complete: bool) -> int:
        """PUT /import: an XVA in the body.  Answers an HTTP status; the outcome is the
        task's (XAPI's own way: the body is streamed, the result comes from the task)."""
        with self.lock:
            if query.get("session_id") not in self.sessions:
                return 401
            task = query.get("task_id", "")
            if task not in self.objects["task"]:
                return 404
            self.uploads.append(body)
            try:
                if not complete:
                    raise Failure("IMPORT_INCOMPLETE", "the upload ended early")
                vm = self._import_xva(body)
            except Failure as failure:
                self.objects["task"][task].update(status="failure",
                                                  error_info=failure.description)
                return 200
            self.objects["task"][task].update(
                status="success", progress=1.0,
                result=f"<value><array><data><value>{vm}</value></data></array></value>")
            return 200

    def http_import_raw_vdi(self, query: dict[str, str], body: bytes, complete: bool) -> int:
        """PUT /import_raw_vdi?vdi=REF&format=raw: the disk's bytes in the body."""
        with self.lock:
            if query.get("session_id") not in self.sessions:
                return 401
            vdi = query.get("vdi", "")
            if vdi not in self.objects["VDI"]:
                return 404
            fmt = query.get("format", "raw")
            if fmt not in ("raw", "vhd") or not complete:
                return 400
            self.uploads.append(body)
            if fmt == "vhd":  # decoded by qemu-img: an implementation other than glasspane's
                body = _vhd_to_raw(body)
                if body is None:
                    return 400
            if len(body) > self.objects["VDI"][vdi]["virtual_size"]:
                return 400
            self.disks[vdi] = body
            self.event("VDI", vdi, "mod")
            return 200

    # -- the /export handlers ------------------------------------------------------------------
    def http_export(self, query: dict[str, str]) -> tuple[int, bytes]:
        """GET /export?ref=VM or uuid=...: the VM as an XVA (XAPI refuses a running VM)."""
        from glasspane.images.vm import VmSettings
        from tests.images.xva_builder import build_xva
        with self.lock:
            if query.get("session_id") not in self.sessions:
                return 401, b""
            vm = query.get("ref") or next(
                (r for r, v in self.objects["VM"].items() if v["uuid"] == query.get("uuid")),
                "")
            if vm not in self.objects["VM"]:
                return 404, b""
            record = self.record("VM", vm)
            task = query.get("task_id", "")
            if record["power_state"] not in ("Halted", "Suspended"):
                if task in self.objects["task"]:
                    self.objects["task"][task].update(
                        status="failure", error_info=["VM_BAD_POWER_STATE", vm, "halted",
                                                      record["power_state"].lower()])
                return 500, b""
            disks = [self.disks.get(self.record("VBD", v)["VDI"], b"")
                     for v in record["VBDs"] if self.record("VBD", v)["type"] == "Disk"]
            sizes = [self.record("VDI", self.record("VBD", v)["VDI"])["virtual_size"]
                     for v in record["VBDs"] if self.record("VBD", v)["type"] == "Disk"]
        with tempfile.TemporaryDirectory() as work:
            path = Path(work) / "export.xva"
            build_xva(path, [(size, [(i, data[i << 20:(i + 1) << 20])
                                     for i in range(0, (len(data) + (1 << 20) - 1) >> 20)
                                     if data[i << 20:(i + 1) << 20].strip(b"\0")])
                             for size, data in zip(sizes, disks, strict=True)],
                      VmSettings(record["name_label"], record["VCPUs_max"] or 1,
                                 max(1, record["memory_static_max"] >> 20)))
            body = path.read_bytes()
        with self.lock:
            if task in self.objects["task"]:
                self.objects["task"][task].update(status="success", progress=1.0, result="")
        return 200, body

    def http_export_raw_vdi(self, query: dict[str, str]) -> tuple[int, bytes]:
        """GET /export_raw_vdi?vdi=REF&format=raw|vhd: one disk; VHD made by qemu-img, an
        implementation other than glasspane's."""
        import subprocess
        with self.lock:
            if query.get("session_id") not in self.sessions:
                return 401, b""
            vdi = query.get("vdi", "")
            if vdi not in self.objects["VDI"]:
                return 404, b""
            size = self.record("VDI", vdi)["virtual_size"]
            data = self.disks.get(vdi, b"").ljust(size, b"\0")
        fmt = query.get("format", "raw")
        if fmt == "raw":
            return 200, data
        if fmt != "vhd":
            return 400, b""
        with tempfile.TemporaryDirectory() as work:
            raw, vhd = Path(work) / "disk.raw", Path(work) / "disk.vhd"
            raw.write_bytes(data)
            subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
                            "subformat=dynamic,force_size=on", str(raw), str(vhd)], check=True)
            return 200, vhd.read_bytes()

    def _import_xva(self, body: bytes) -> str:
        import io
        import tarfile
        try:
            archive = tarfile.open(fileobj=io.BytesIO(body), mode="r:")  # noqa: SIM115 - in memory
            members = {m.name: m for m in archive.getmembers()}
            ova = archive.extractfile(members["ova.xml"])
            assert ova is not None
            text = ova.read().decode()
        except (tarfile.TarError, KeyError) as exc:
            raise Failure("IMPORT_ERROR", f"not an XVA: {exc}") from None
        (header,), _ = xmlrpc.client.loads(
            f"<methodResponse><params><param>{text}</param></params></methodResponse>")
        objects = {o["id"]: o for o in header["objects"]}
        vm_snapshot = next(o["snapshot"] for o in objects.values() if o["class"] == "VM")
        vbds = []
        for vbd in (objects[ref] for ref in vm_snapshot.get("VBDs", []) if ref in objects):
            vdi_source = objects.get(vbd["snapshot"]["VDI"])
            if vdi_source is None:
                continue
            size = int(vdi_source["snapshot"]["virtual_size"])
            data = bytearray(size)
            prefix = vdi_source["id"] + "/"
            for name, member in members.items():
                chunk = name.removeprefix(prefix)
                if name.startswith(prefix) and chunk.isdigit():
                    content = archive.extractfile(member)
                    assert content is not None
                    offset = int(chunk) << 20
                    piece = content.read()
                    data[offset:offset + len(piece)] = piece
            vdi = self.add("VDI", name_label=vdi_source["snapshot"]["name_label"],
                           virtual_size=size, type="user")
            self.disks[vdi] = bytes(data)
            vbds.append(self.add("VBD", VDI=vdi, type="Disk",
                                 userdevice=vbd["snapshot"].get("userdevice", "0")))
        vm = self.add("VM", name_label=vm_snapshot["name_label"], power_state="Halted",
                      VCPUs_max=int(vm_snapshot.get("VCPUs_max", 1)),
                      memory_static_max=int(vm_snapshot.get("memory_static_max", 0)),
                      VBDs=vbds)
        for vbd in vbds:
            self.objects["VBD"][vbd]["VM"] = vm
        return vm


def _vhd_to_raw(body: bytes) -> bytes | None:
    import subprocess
    with tempfile.TemporaryDirectory() as work:
        vhd, raw = Path(work) / "in.vhd", Path(work) / "out.raw"
        vhd.write_bytes(body)
        done = subprocess.run(["qemu-img", "convert", "-f", "vpc", "-O", "raw", str(vhd),
                               str(raw)], capture_output=True, check=False)
        return raw.read_bytes() if done.returncode == 0 else None


class _Handler(BaseHTTPRequestHandler):
    xapi: Xapi

    def do_PUT(self) -> None:
        from urllib.parse import parse_qsl, urlsplit
        parts = urlsplit(self.path)
        if parts.path not in ("/import", "/import_raw_vdi"):
            self.send_error(404)
            return
        length = self.headers.get("Content-Length")
        if length is not None:
            expected = int(length)
            body = self.rfile.read(expected)
            complete = len(body) == expected
        else:  # XAPI's clients may stream without a length, to the connection's end
            body, complete = self.rfile.read(), True
        query = dict(parse_qsl(parts.query))
        status = self.xapi.http_import(query, body, complete) if parts.path == "/import" \
            else self.xapi.http_import_raw_vdi(query, body, complete)
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def do_GET(self) -> None:
        from urllib.parse import parse_qsl, urlsplit
        parts = urlsplit(self.path)
        query = dict(parse_qsl(parts.query))
        if parts.path == "/export":
            status, body = self.xapi.http_export(query)
        elif parts.path == "/export_raw_vdi":
            status, body = self.xapi.http_export_raw_vdi(query)
        else:
            status, body = 404, b""
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        params, method = xmlrpc.client.loads(body, use_builtin_types=True)
        try:
            value = self.xapi.call(str(method), params)
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


def start(xapi: Xapi, tls: tuple[Path, Path] | None = None) -> Running:
    """Serve `xapi` on a loopback port; over HTTPS with (certificate, key) as XAPI does."""
    import ssl
    handler = type("Handler", (_Handler,), {"xapi": xapi})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    scheme = "http"
    if tls is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(tls[0]), str(tls[1]))
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
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
    """A pool of one host with local storage, a network, the control domain, a template and
    two VMs (one running with guest metrics): the refs by role."""
    metrics = xapi.add("host_metrics", memory_total=64 << 30, memory_free=40 << 30, live=True)
    host = xapi.add("host", name_label="xcp1", address="10.0.0.11", hostname="xcp1",
                    metrics=metrics, cpu_info={"cpu_count": "16", "modelname": "Xeon"},
                    software_version={"product_brand": "XCP-ng", "product_version": "8.3.0"},
                    API_version_major=2, API_version_minor=21, enabled=True)
    pool = xapi.add("pool", name_label="lab", master=host)
    sr = xapi.add("SR", name_label="Local storage", type="ext", content_type="user",
                  physical_size=500 << 30, physical_utilisation=120 << 30, shared=False)
    xapi.objects["pool"][pool]["default_SR"] = sr
    network = xapi.add("network", name_label="Pool-wide network", bridge="xenbr0")
    xapi.add("network", name_label="lab-vlan-20", bridge="xapi1")
    dom0 = xapi.add("VM", name_label="Control domain on host: xcp1", is_control_domain=True,
                    power_state="Running", resident_on=host)
    template = xapi.add("VM", name_label="Debian Bookworm 12", is_a_template=True,
                        power_state="Halted", VCPUs_max=1, memory_static_max=1 << 30)
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
    db = xapi.add("VM", name_label="db-1", power_state="Halted", VCPUs_max=4,
                  VCPUs_at_startup=4, memory_static_max=8 << 30)
    return {"host": host, "pool": pool, "sr": sr, "network": network, "dom0": dom0,
            "template": template, "web": web, "db": db}
