"""The loopback XAPI keeps the rules xen-api's sources keep (each cited in server.py and
handlers.py), through the official SDK: what the driver tests rely on it to refuse."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import XenAPI

from tests.xapi.server import Running, Xapi, small_pool, start


@pytest.fixture
def xapi() -> Iterator[tuple[Running, Any, dict[str, str]]]:
    running = start(Xapi(password="pw"))
    refs = small_pool(running.xapi)
    session = XenAPI.Session(running.url)
    session.xenapi.login_with_password("root", "pw", "2.21", "test")
    yield running, session.xenapi, refs
    running.stop()


def code_of(call: Any, *args: Any) -> list[str]:
    with pytest.raises(XenAPI.Failure) as failure:
        call(*args)
    return [str(d) for d in failure.value.details]


def test_vcpu_rules(xapi: tuple[Running, Any, dict[str, str]]) -> None:
    _, api, refs = xapi
    db = refs["db"]  # 4 vCPUs, halted
    assert code_of(api.VM.set_VCPUs_max, db, "2")[0] == "INVALID_VALUE"
    assert code_of(api.VM.set_VCPUs_at_startup, db, "8")[0] == "INVALID_VALUE"
    api.VM.set_VCPUs_at_startup(db, "2")
    api.VM.set_VCPUs_max(db, "2")
    api.VM.set_VCPUs_max(db, "3")
    api.VM.set_platform(db, {"cores-per-socket": "2"})
    assert code_of(api.VM.start, db, False, False) == [
        "VCPU_MAX_NOT_CORES_PER_SOCKET_MULTIPLE", "3", "2"]
    api.VM.set_VCPUs_max(db, "4")
    api.VM.start(db, False, False)
    assert code_of(api.VM.set_VCPUs_max, db, "6")[0] == "VM_BAD_POWER_STATE"
    api.VM.pause(db)  # not only Running: anything but Halted
    assert code_of(api.VM.set_VCPUs_at_startup, db, "2") == [
        "VM_BAD_POWER_STATE", db, "halted", "paused"]


def test_memory_limit_rules(xapi: tuple[Running, Any, dict[str, str]]) -> None:
    _, api, refs = xapi
    db = refs["db"]  # halted
    gib = str(1 << 30)
    assert code_of(api.VM.set_memory_limits, db, gib, gib, str(2 << 30), gib)[0] == \
        "MEMORY_CONSTRAINT_VIOLATION"  # dynamic_min above dynamic_max
    api.VM.set_memory_limits(db, str(256 << 20), gib, gib, gib)
    record = api.VM.get_record(db)
    assert [record[f"memory_{k}"] for k in ("static_min", "dynamic_min", "dynamic_max",
                                           "static_max")] == [str(256 << 20), gib, gib, gib]
    api.VM.start(db, False, False)
    assert code_of(api.VM.set_memory_limits, db, gib, gib, gib, gib) == [
        "VM_BAD_POWER_STATE", db, "halted", "running"]


def test_disks_in_use_destroy_and_snapshots(xapi: tuple[Running, Any, dict[str, str]]) -> None:
    running, api, refs = xapi
    pool = running.xapi
    db = refs["db"]
    vdi = pool.add("VDI", name_label="db root", virtual_size=1 << 20, SR=refs["sr"])
    pool.objects["VM"][db]["VBDs"].append(pool.add("VBD", VM=db, VDI=vdi, type="Disk"))
    api.VM.start(db, False, False)
    assert code_of(api.VDI.destroy, vdi) == ["VDI_IN_USE", vdi, "destroy"]
    # snapshot: ignore_vdis may be left out, and any power state will do.
    running_snapshot = api.VM.snapshot(db, "while-running")
    api.VM.suspend(db)
    suspended_snapshot = api.VM.snapshot(db, "while-suspended", [])
    assert set(api.VM.get_snapshots(db)) == {running_snapshot, suspended_snapshot}
    api.VM.destroy(db)  # a suspended VM may be destroyed
    # ... which leaves its snapshots and its disk behind: glasspane removes them itself.
    assert api.VM.get_is_a_snapshot(running_snapshot) and vdi in pool.objects["VDI"]
    api.VDI.destroy(vdi)


def test_sr_full_is_backend_failure_44(xapi: tuple[Running, Any, dict[str, str]]) -> None:
    _, api, refs = xapi
    assert code_of(api.VDI.create, {
        "name_label": "huge", "SR": refs["sr"], "virtual_size": str(1 << 50), "type": "user",
        "sharable": False, "read_only": False, "other_config": {}})[:3] == [
        "SR_BACKEND_FAILURE_44", "", "There is insufficient space"]


def test_event_tokens(xapi: tuple[Running, Any, dict[str, str]]) -> None:
    _, api, refs = xapi
    first = api.event.__getattr__("from")(["vm"], "", 0.1)
    last, _, messages = first["token"].partition(",")
    assert len(last) == len(messages) == 20 and last.isdigit()
    assert code_of(api.event.__getattr__("from"), ["vm"], "12", 0.1) == [
        "EVENT_FROM_TOKEN_PARSE_FAILURE", "12"]
    api.VM.start(refs["db"], False, False)
    later = api.event.__getattr__("from")(["vm"], first["token"], 0.1)
    assert [e["ref"] for e in later["events"]] == [refs["db"]]


def test_a_task_cancelled_midway(xapi: tuple[Running, Any, dict[str, str]],
                                 tmp_path: Path) -> None:
    """task.cancel makes a task "cancelling"; the handler working for it stops at its next
    chunk and the task ends "cancelled" with TASK_CANCELLED."""
    import socket
    import time
    from urllib.parse import urlsplit
    running, api, refs = xapi
    vdi = api.VDI.create({"name_label": "slow", "SR": refs["sr"], "virtual_size": str(4 << 20),
                          "type": "user", "sharable": False, "read_only": False,
                          "other_config": {}})
    task = api.task.create("upload", "")
    parts = urlsplit(running.url)
    with socket.create_connection((parts.hostname, parts.port)) as sock:
        session = running.xapi.sessions.copy().pop()
        sock.sendall(f"PUT /import_raw_vdi?session_id={session}&vdi={vdi}&task_id={task}"
                     f"&format=raw HTTP/1.1\r\nContent-Length: {4 << 20}\r\n\r\n".encode())
        assert sock.recv(12).startswith(b"HTTP/1.0 200")  # answered before the body
        sock.sendall(bytes(1 << 20))
        deadline = time.monotonic() + 20
        while float(api.task.get_progress(task)) < 0.25:  # the chunk is in: it waits for more
            assert time.monotonic() < deadline, "the first chunk never showed in the progress"
            time.sleep(0.05)
        api.task.cancel(task)
        assert api.task.get_status(task) == "cancelling"
        sock.sendall(bytes(1 << 20))
        deadline = time.monotonic() + 20
        while api.task.get_status(task) == "cancelling":
            assert time.monotonic() < deadline, "the handler never noticed the cancel"
            time.sleep(0.05)
    assert api.task.get_status(task) == "cancelled"
    assert api.task.get_error_info(task) == ["TASK_CANCELLED", task]


def _xva(tmp_path: Path, chunks: list[tuple[str, bytes]], size: int) -> Path:
    """An XVA of one disk of `size` bytes with exactly the members `chunks` after ova.xml."""
    import tarfile

    from glasspane.images.vm import VmSettings
    from tests.images.xva_builder import add, build_ova_xml
    path = tmp_path / "crafted.xva"
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        add(tar, "ova.xml", build_ova_xml(VmSettings("crafted", 1, 512), [size]))
        for name, data in chunks:
            add(tar, name, data)
    return path


def _sum(data: bytes) -> bytes:
    return hashlib.sha1(data).hexdigest().encode()


@pytest.mark.parametrize(("case", "members", "reason"), [
    ("out of order", [("Ref:100/00000001", b"b" * (1 << 20)),
                      ("Ref:100/00000001.checksum", _sum(b"b" * (1 << 20))),
                      ("Ref:100/00000000", b"a" * (1 << 20)),
                      ("Ref:100/00000000.checksum", _sum(b"a" * (1 << 20)))],
     "chunk suffix to have increased"),
    ("bad checksum", [("Ref:100/00000000", b"a" * (1 << 20)),
                      ("Ref:100/00000000.checksum", _sum(b"x")),
                      ("Ref:100/00000001", b"b" * (1 << 20)),
                      ("Ref:100/00000001.checksum", _sum(b"b" * (1 << 20)))],
     "Checksum failed"),
    ("no last chunk", [("Ref:100/00000000", b"a" * (1 << 20)),
                       ("Ref:100/00000000.checksum", _sum(b"a" * (1 << 20)))],
     "lacks its last chunk"),
    ("whole", [("Ref:100/00000000", b"a" * (1 << 20)),
               ("Ref:100/00000000.checksum", _sum(b"a" * (1 << 20))),
               ("Ref:100/00000001", b"b" * (1 << 20)),
               ("Ref:100/00000001.checksum", _sum(b"b" * (1 << 20)))], None),
])
def test_import_reads_as_stream_vdi_does(xapi: tuple[Running, Any, dict[str, str]],
                                         tmp_path: Path, case: str,
                                         members: list[tuple[str, bytes]],
                                         reason: str | None) -> None:
    from tests.xapi.handlers import import_archive
    from tests.xapi.server import Failure
    running, _, refs = xapi
    data = _xva(tmp_path, members, 2 << 20).read_bytes()
    vms = set(running.xapi.objects["VM"])
    if reason is None:
        vm = import_archive(running.xapi, data, refs["sr"])
        [vbd] = running.xapi.objects["VM"][vm]["VBDs"]
        vdi = running.xapi.objects["VBD"][vbd]["VDI"]
        assert running.xapi.disks[vdi] == b"a" * (1 << 20) + b"b" * (1 << 20)
        return
    with pytest.raises(Failure) as failure:
        import_archive(running.xapi, data, refs["sr"])
    assert failure.value.description[0] == "IMPORT_ERROR"
    assert reason in failure.value.description[1], case
    assert set(running.xapi.objects["VM"]) == vms
