"""The loopback XAPI's HTTP handlers (/import, /import_raw_vdi, /export, /export_raw_vdi),
each rule as xen-api's ocaml/xapi sources have it (cited per rule):

- a handler decides before the body: refuse (an HTTP status; the task, when one was named,
  records why), redirect (302 to the pool member that can see the SR), or accept: 200 at once,
  then the body is read, and the outcome goes only into the task (import_raw_vdi.ml,
  import.ml: Http_svr.headers is called before the body is read);
- exports send no Content-Length and, failing midway, just close (export.ml,
  export_raw_vdi.ml);
- a request without task_id runs under a task of the handler's own, which nobody sees
  (xapi_http.ml, with_context);
- a task cancelled meanwhile (task.cancel: cancelling) is noticed between chunks and ends
  cancelled with TASK_CANCELLED (xapi_task.ml, TaskHelper.exn_if_cancelling).

Faults a real pool can have, for tests: `xapi.faults[handler]` is the XAPI error that an SR
failing midway records (the transfer stops there); `xapi.cut_after` bytes is where something
between the two ends closes every download cleanly, unknown to XAPI.
"""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

if TYPE_CHECKING:
    from tests.xapi.server import Xapi

CHUNK = 1 << 20
NULL = "OpaqueRef:NULL"


@dataclass
class Refuse:
    status: int


@dataclass
class Redirect:
    address: str  # the member's host.address


@dataclass
class Accept:
    task: str
    work: Callable[[], Any]  # uploads: takes (body, length); downloads: returns the bytes


def _failure(*description: str) -> Exception:
    from tests.xapi.server import Failure
    return Failure(*description)


def task_for(xapi: Xapi, query: dict[str, str], label: str) -> str | None:
    """The task named by task_id, or one of the handler's own (xapi_http.ml with_context);
    None for a task_id that names nothing."""
    task = query.get("task_id")
    if task is None:
        return xapi.add("task", name_label=label, status="pending", progress=0.0,
                        other_config={"handler-own": "true"})
    return task if task in xapi.objects["task"] else None


def fail_task(xapi: Xapi, task: str | None, description: list[str]) -> None:
    if task in xapi.objects["task"]:
        xapi.objects["task"][task].update(status="failure", error_info=description)
        xapi.event("task", task, "mod")


def check_cancel(xapi: Xapi, task: str) -> None:
    """TaskHelper.exn_if_cancelling: the worker notices a cancel between chunks."""
    with xapi.lock:
        record = xapi.objects["task"].get(task)
        if record is not None and record["status"] == "cancelling":
            raise _failure("TASK_CANCELLED", task)


def sees(xapi: Xapi, sr: str, host: str) -> bool:
    """Importexport.check_sr_availability: a shared SR, or one with a PBD attached on `host`.
    (An SR of NULL: a VDI a test made without one, seen everywhere.)"""
    if sr == NULL or sr not in xapi.objects["SR"]:
        return True
    record = xapi.objects["SR"][sr]
    pbds = [xapi.objects["PBD"][p] for p in record["PBDs"] if p in xapi.objects["PBD"]]
    return record["shared"] or not pbds or any(
        p["host"] == host and p["currently_attached"] for p in pbds)


def host_for(xapi: Xapi, srs: list[str]) -> str | None:
    """Importexport.find_host_for_sr: the address of a host that sees every SR in `srs`."""
    for ref, host in xapi.objects["host"].items():
        if all(sees(xapi, sr, ref) for sr in srs):
            return str(host["address"])
    return None


def _place(xapi: Xapi, srs: list[str], local: str) -> Redirect | Refuse | None:
    """None when this host can serve; else the redirect (importexport.ml,
    return_302_redirect), or 404 when no host sees the SRs."""
    if all(sees(xapi, sr, local) for sr in srs):
        return None
    address = host_for(xapi, srs)
    return Redirect(address) if address else Refuse(404)


@dataclass
class RawVdi:
    vdi: str
    task: str
    fmt: str


def _raw_vdi(xapi: Xapi, query: dict[str, str], local: str, label: str
             ) -> RawVdi | Redirect | Refuse:
    """What /import_raw_vdi and /export_raw_vdi both check first, under the lock: the
    session, the VDI (a reference or a UUID: Importexport.vdi_of_req), the host that sees
    its SR, the task, and the format."""
    if query.get("session_id") not in xapi.sessions:
        return Refuse(401)
    vdi = query.get("vdi", "")
    if vdi not in xapi.objects["VDI"]:
        vdi = next((r for r, v in xapi.objects["VDI"].items() if v["uuid"] == vdi), "")
    if not vdi:
        return Refuse(404)
    placed = _place(xapi, [xapi.objects["VDI"][vdi]["SR"]], local)
    if placed is not None:
        return placed
    task = task_for(xapi, query, label)
    if task is None:
        return Refuse(404)
    fmt = query.get("format", "raw")
    if fmt not in ("raw", "vhd"):
        fail_task(xapi, task, ["FORMAT_NOT_SUPPORTED", fmt])
        return Refuse(400)
    return RawVdi(vdi, task, fmt)


# -- /import_raw_vdi (import_raw_vdi.ml) --------------------------------------------------------
def import_raw_vdi(xapi: Xapi, query: dict[str, str], local: str) -> Accept | Redirect | Refuse:
    with xapi.lock:
        found = _raw_vdi(xapi, query, local, "VDI.import")
    if not isinstance(found, RawVdi):
        return found
    vdi, task, fmt = found.vdi, found.task, found.fmt

    def work(body: BinaryIO, length: int) -> str:
        data = _read(xapi, task, body, length)
        if fmt == "vhd":  # vhd-tool receive; decoded here by qemu-img, not glasspane
            decoded = _vhd_to_raw(data)
            if decoded is None:
                raise _failure("VDI_IO_ERROR", "vhd-tool: not a valid VHD")
            data = decoded
        with xapi.lock:
            if fault := xapi.faults.get("/import_raw_vdi"):
                raise _failure(*fault)
            if len(data) > xapi.objects["VDI"][vdi]["virtual_size"]:
                # Written past the end of the block device.
                raise _failure("VDI_IO_ERROR", "Device I/O errors")
            xapi.disks[vdi] = data
            xapi.event("VDI", vdi, "mod")
        return ""

    return Accept(task, work)


def _read(xapi: Xapi, task: str, body: BinaryIO, length: int) -> bytes:
    """The body, chunk by chunk (cancel checked between); what XAPI's reader does when the
    client stops early: the transfer fails."""
    parts, left = [], length
    while left:
        piece = body.read(min(CHUNK, left))
        if not piece:
            raise _failure("IMPORT_INCOMPLETE", f"the body ended {left} bytes early")
        parts.append(piece)
        left -= len(piece)
        check_cancel(xapi, task)  # noticed as each chunk arrives
        with xapi.lock:
            if task in xapi.objects["task"]:
                xapi.objects["task"][task]["progress"] = 1 - left / length
    data = b"".join(parts)
    xapi.uploads.append(data)
    return data


def _vhd_to_raw(body: bytes) -> bytes | None:
    with tempfile.TemporaryDirectory() as work:
        vhd, raw = Path(work) / "in.vhd", Path(work) / "out.raw"
        vhd.write_bytes(body)
        done = subprocess.run(["qemu-img", "convert", "-f", "vpc", "-O", "raw", str(vhd),
                               str(raw)], capture_output=True, check=False)
        return raw.read_bytes() if done.returncode == 0 else None


# -- /import (import.ml, stream_vdi.ml) -----------------------------------------------------------
def import_xva(xapi: Xapi, query: dict[str, str], local: str) -> Accept | Redirect | Refuse:
    with xapi.lock:
        if query.get("session_id") not in xapi.sessions:
            return Refuse(401)
        task = task_for(xapi, query, "VM.import")
        if task is None:
            return Refuse(404)
        sr = query.get("sr_id", "")
        if not sr:
            # import.ml: "request was missing both sr_id and sr_uuid: using pool default";
            # Helpers.get_default_sr fails when pool.default_SR is not a valid SR.
            pool = next(iter(xapi.objects["pool"].values()))
            sr = pool["default_SR"]
            if sr not in xapi.objects["SR"]:
                fail_task(xapi, task, ["DEFAULT_SR_NOT_FOUND", sr])
                return Refuse(500)
        elif sr not in xapi.objects["SR"]:
            fail_task(xapi, task, ["HANDLE_INVALID", "SR", sr])
            return Refuse(500)
        placed = _place(xapi, [sr], local)
        if placed is not None:
            return placed

    def work(body: BinaryIO, length: int) -> str:
        data = _read(xapi, task, body, length)
        with xapi.lock:
            vm = import_archive(xapi, data, sr)
        return f"<value><array><data><value>{vm}</value></data></array></value>"

    return Accept(task, work)


def import_archive(xapi: Xapi, data: bytes, sr: str) -> str:
    """An XVA read as a stream, as import.ml and stream_vdi.ml read one: ova.xml first; each
    disk's chunks `Ref:N/%08d` in increasing order (recv_all_vdi: "Expected VDI chunk suffix
    to have increased"), each followed by its checksum member, which must match ("Checksum
    failed on ..."); and every disk's last chunk present, the disk's size being where it
    ends.  A broken rule fails the import (IMPORT_ERROR) and leaves nothing behind."""
    import xmlrpc.client
    archive = tarfile.open(fileobj=io.BytesIO(data), mode="r|")  # noqa: SIM115 - in memory
    try:
        first = archive.next()
        if first is None or first.name != "ova.xml":
            raise _failure("IMPORT_ERROR", "Invalid XVA file: ova.xml is not first")
        ova = archive.extractfile(first)
        assert ova is not None
        (header,), _ = xmlrpc.client.loads(
            "<methodResponse><params><param>" + ova.read().decode() +
            "</param></params></methodResponse>")
        objects = {o["id"]: o for o in header["objects"]}
        contents: dict[str, bytearray] = {}
        last_chunk: dict[str, int] = {}
        ends: dict[str, int] = {}
        pending: tuple[str, int, bytes] | None = None
        while (member := archive.next()) is not None:
            content = archive.extractfile(member)
            payload = content.read() if content is not None else b""
            disk, _, name = member.name.rpartition("/")
            number, _, suffix = name.partition(".")
            if pending is not None:
                ref, chunk, chunk_data = pending
                if member.name != f"{ref}/{chunk:08d}.{suffix}" or suffix not in (
                        "checksum", "xxhash"):
                    raise _failure("IMPORT_ERROR", f"Invalid XVA file: {ref}/{chunk:08d} "
                                   "has no checksum after it")
                expected = hashlib.sha1(chunk_data).hexdigest() if suffix == "checksum" \
                    else _xxhash(chunk_data)
                if payload.decode().strip().lower() != expected.lower():
                    raise _failure("IMPORT_ERROR", f"Checksum failed on {ref}/{chunk:08d}")
                pending = None
                continue
            if disk not in objects or objects[disk]["class"] != "VDI" or not number.isdigit() \
                    or suffix:
                raise _failure("IMPORT_ERROR", f"Invalid XVA file: unexpected {member.name}")
            chunk = int(number)
            if chunk <= last_chunk.get(disk, -1):
                raise _failure("IMPORT_ERROR", "Expected VDI chunk suffix to have increased "
                               f"under lexicographic ordering: {member.name}")
            last_chunk[disk] = chunk
            size = int(objects[disk]["snapshot"]["virtual_size"])
            target = contents.setdefault(disk, bytearray(size))
            target[chunk * CHUNK:chunk * CHUNK + len(payload)] = payload
            ends[disk] = chunk * CHUNK + len(payload)
            pending = (disk, chunk, payload)
        if pending is not None:
            raise _failure("IMPORT_ERROR", f"Invalid XVA file: {pending[0]}/{pending[1]:08d} "
                           "has no checksum after it")
    except tarfile.TarError as exc:
        raise _failure("IMPORT_ERROR", f"Invalid XVA file: {exc}") from None
    finally:
        archive.close()
    vm_snapshot = next(o["snapshot"] for o in objects.values() if o["class"] == "VM")
    disks = []
    for vbd in (objects[ref] for ref in vm_snapshot.get("VBDs", []) if ref in objects):
        source = objects.get(vbd["snapshot"]["VDI"])
        if source is None:
            continue
        size = int(source["snapshot"]["virtual_size"])
        if ends.get(source["id"]) != size:
            raise _failure("IMPORT_ERROR", f"Invalid XVA file: disk {source['id']} lacks its "
                           "last chunk")
        disks.append((vbd, source, size))
    vbds = []
    for vbd, source, size in disks:
        vdi = xapi.add("VDI", name_label=source["snapshot"]["name_label"], virtual_size=size,
                       type="user", SR=sr)
        xapi.disks[vdi] = bytes(contents[source["id"]])
        vbds.append(xapi.add("VBD", VDI=vdi, type="Disk",
                             userdevice=vbd["snapshot"].get("userdevice", "0")))
    vm = xapi.add("VM", name_label=vm_snapshot["name_label"], power_state="Halted",
                  VCPUs_max=int(vm_snapshot.get("VCPUs_max", 1)),
                  VCPUs_at_startup=int(vm_snapshot.get("VCPUs_at_startup",
                                                       vm_snapshot.get("VCPUs_max", 1))),
                  memory_static_max=int(vm_snapshot.get("memory_static_max", 0)),
                  other_config=dict(vm_snapshot.get("other_config", {})),  # import.ml keeps it
                  VBDs=vbds)
    for vbd in vbds:
        xapi.objects["VBD"][vbd]["VM"] = vm
    return vm


def _xxhash(data: bytes) -> str:
    import xxhash
    return f"{xxhash.xxh64_intdigest(data):016x}"


# -- /export (export.ml) and /export_raw_vdi (export_raw_vdi.ml) --------------------------------
def export_xva(xapi: Xapi, query: dict[str, str], local: str) -> Accept | Redirect | Refuse:
    with xapi.lock:
        if query.get("session_id") not in xapi.sessions:
            return Refuse(401)
        vm = query.get("ref") or next(
            (r for r, v in xapi.objects["VM"].items() if v["uuid"] == query.get("uuid")), "")
        if vm not in xapi.objects["VM"]:
            return Refuse(404)
        task = task_for(xapi, query, "VM.export")
        if task is None:
            return Refuse(404)
        record = xapi.objects["VM"][vm]
        if record["power_state"] not in ("Halted", "Suspended"):
            fail_task(xapi, task, ["VM_BAD_POWER_STATE", vm, "halted",
                                   record["power_state"].lower()])
            return Refuse(500)
        vbds = [xapi.objects["VBD"][v] for v in record["VBDs"]]
        vdis = [v["VDI"] for v in vbds if v["type"] == "Disk" and v["VDI"] != NULL]
        placed = _place(xapi, [xapi.objects["VDI"][v]["SR"] for v in vdis], local)
        if placed is not None:
            return placed
        disks = [(xapi.objects["VDI"][v]["virtual_size"], xapi.disks.get(v, b""))
                 for v in vdis]
        settings = (record["name_label"], record["VCPUs_max"] or 1,
                    max(1, record["memory_static_max"] >> 20))

    def work() -> bytes:
        from glasspane.images.vm import VmSettings
        from tests.images.xva_builder import build_xva
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / "export.xva"
            build_xva(path, [(size, _chunks(size, data)) for size, data in disks],
                      VmSettings(*settings))
            return path.read_bytes()

    return Accept(task, work)


def _chunks(size: int, data: bytes) -> list[tuple[int, bytes]]:
    """stream_vdi.ml send_all: 1 MiB chunks, those of zeros left out but for the first and
    the last (whose end gives the importer the disk's size)."""
    data = data.ljust(size, b"\0")
    last = (size - 1) // CHUNK
    return [(i, data[i * CHUNK:(i + 1) * CHUNK]) for i in range(last + 1)
            if i in (0, last) or data[i * CHUNK:(i + 1) * CHUNK].strip(b"\0")]


def export_raw_vdi(xapi: Xapi, query: dict[str, str], local: str) -> Accept | Redirect | Refuse:
    with xapi.lock:
        found = _raw_vdi(xapi, query, local, "VDI.export")
        if not isinstance(found, RawVdi):
            return found
        task, fmt = found.task, found.fmt
        size = xapi.objects["VDI"][found.vdi]["virtual_size"]
        data = xapi.disks.get(found.vdi, b"").ljust(size, b"\0")

    def work() -> bytes:
        if fmt == "raw":
            return data
        # vhd-tool's VHD, here qemu-img's: an implementation other than glasspane's.
        with tempfile.TemporaryDirectory() as directory:
            raw, vhd = Path(directory) / "disk.raw", Path(directory) / "disk.vhd"
            raw.write_bytes(data)
            subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", "vpc", "-o",
                            "subformat=dynamic,force_size=on", str(raw), str(vhd)], check=True)
            return vhd.read_bytes()

    return Accept(task, work)


HANDLERS: dict[tuple[str, str], Callable[[Xapi, dict[str, str], str],
                                         Accept | Redirect | Refuse]] = {
    ("PUT", "/import"): import_xva, ("PUT", "/import_raw_vdi"): import_raw_vdi,
    ("GET", "/export"): export_xva, ("GET", "/export_raw_vdi"): export_raw_vdi}
