"""The operations catalogue through the served API: routes made from it find their target
(404), check its state (409 naming the state needed), store their command as the task's
payload and validate it again when the task runs, say which operations each caller may run
on each VM, describe every answer in the OpenAPI document, and `vm set` changes a real
libvirt VM's definition for its next boot."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import libvirt
import pytest
from defusedxml import ElementTree
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from glasspane.inventory import tasks
from glasspane.inventory.db import Database
from glasspane.inventory.models import AuditEntry, Task
from glasspane.operations.catalogue import CATALOGUE
from tests.api.conftest import login
from tests.api.test_api import add_vm
from tests.cli.runner import run_cli
from tests.hypervisors.conftest import URI

API = "/api/v1"


def audited(database: Database) -> list[tuple[str, str, str, int]]:
    with database.session() as session:
        return [(e.user, e.action, e.object_name, e.status_code)
                for e in session.scalars(select(AuditEntry))]


def test_a_generated_route_answers_404_for_a_vm_the_inventory_lacks(
        client: TestClient, database: Database) -> None:
    otto = login(client, "otto")
    for method, path, body in (("POST", "/vms/local/ghost/actions/poweroff", None),
                               ("PATCH", "/vms/local/ghost/resources", {"cpus": 2}),
                               ("POST", "/vms/local/ghost/snapshots", {"name": "s1"})):
        response = client.request(method, API + path, headers=otto, json=body)
        assert response.status_code == 404, (path, response.text)
        assert response.json()["detail"] == "no VM named 'ghost' on host local"
    assert ("otto", "vm.set", "local/ghost", 404) in audited(database)
    assert ("otto", "vm.poweroff", "local/ghost", 404) in audited(database)
    # An action there is not: still a 404 naming the ones there are.
    unknown = client.post(f"{API}/vms/local/ghost/actions/explode", headers=otto)
    assert unknown.status_code == 404 and "poweroff" in unknown.json()["detail"]


def test_a_refusal_for_the_vms_state_names_the_state_needed(
        client: TestClient, database: Database) -> None:
    add_vm(database, "web-1", "running")
    add_vm(database, "web-2", "halted")
    otto = login(client, "otto")
    cases = [("/vms/local/web-1/actions/start", None,
              "VM web-1 on host local is running: start needs it halted"),
             ("/vms/local/web-2/actions/shutdown", None,
              "VM web-2 on host local is halted: shutdown needs it running or paused"),
             ("/vms/local/web-2/exec", {"command": ["true"]},
              "VM web-2 on host local is halted: exec needs it running (start it first)"),
             ("/vms/local/web-1/export", {"output": "web-1.qcow2"},
              "VM web-1 on host local is running: export needs it halted, suspended, "
              "crashed or unknown (its disk is in use: shut it down first)")]
    for path, body, detail in cases:
        response = client.post(API + path, headers=otto, json=body)
        assert response.status_code == 409, (path, response.text)
        assert response.json()["detail"] == detail
    assert ("otto", "vm.exec", "local/web-2", 409) in audited(database)
    with database.session() as session:
        assert session.scalars(select(Task)).all() == []  # nothing queued


def test_the_task_payload_is_the_command_and_is_validated_again(
        app: FastAPI, client: TestClient, database: Database) -> None:
    add_vm(database, "web-1", "running")
    otto = login(client, "otto")
    queued = client.post(f"{API}/vms/local/web-1/snapshots", headers=otto,
                         json={"name": "snap-1"})
    assert queued.status_code == 202, queued.text
    with database.session() as session:
        task = session.get(Task, queued.json()["id"])
        assert task is not None and task.kind == "vm.snapshot"
        assert task.params == {"host": "local", "name": "web-1", "snapshot": "snap-1"}
        task.state = "cancelled"  # not run here: this test's host has no such VM
    # A payload the command model refuses (written by hand, or by an older release): the
    # task fails saying which fields, not what they held, and never reaches the host.
    bad = tasks.submit(database, "vm.snapshot", "vm", "local/web-1",
                       {"host": "local", "name": "web-1", "colour": "s3cret-value"}, "otto")
    claimed = app.state.worker.claim()
    assert claimed is not None and claimed[0] == bad["id"]
    app.state.worker.run(*claimed)
    failed = client.get(f"{API}/tasks/{bad['id']}", headers=otto).json()
    assert failed["state"] == "failed"
    error = failed["error"]
    assert f"task {bad['id']} (vm.snapshot)" in error and "not a valid Snapshot" in error
    assert "snapshot: Field required" in error and "colour: Extra inputs" in error
    assert "s3cret-value" not in error and "internal error" not in error


def test_each_vm_says_what_the_caller_may_do_to_it_now(
        client: TestClient, database: Database) -> None:
    add_vm(database, "web-1", "running")
    add_vm(database, "web-2", "halted")
    vera, otto = login(client, "vera"), login(client, "otto")
    for _ in range(2):  # the second answers come from the listing cache, kept per role
        viewed = {v["name"]: v for v in client.get(f"{API}/vms", headers=vera
                                                   ).json()["items"]}
        operated = {v["name"]: v for v in client.get(f"{API}/vms", headers=otto
                                                     ).json()["items"]}
        assert viewed["web-1"]["actions"] == [] and viewed["web-2"]["actions"] == []
        running = set(operated["web-1"]["actions"])
        halted = set(operated["web-2"]["actions"])
        assert {"vm.shutdown", "vm.reboot", "vm.pause", "vm.suspend", "vm.exec",
                "vm.snapshot", "vm.set", "vm.destroy"} <= running
        assert not {"vm.start", "vm.resume", "vm.export"} & running
        assert {"vm.start", "vm.export", "vm.snapshot", "vm.set", "vm.destroy"} <= halted
        assert not {"vm.shutdown", "vm.exec", "vm.reboot"} & halted
        assert operated["web-1"]["container_count"] == 0
    detail = client.get(f"{API}/vms/local/web-2", headers=otto).json()
    assert set(detail["actions"]) == halted and "container_count" not in detail
    assert client.get(f"{API}/vms/local/web-2", headers=vera).json()["actions"] == []


def test_the_openapi_document_describes_every_vm_operations_answer(
        client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    vm_operations = [op for op in CATALOGUE.values() if op.object_type == "vm"]
    assert len(vm_operations) >= 15  # create, 7 power actions, snapshot, revert, destroy,
    #                                     set, export, exec, configure
    for op in vm_operations:
        described = spec["paths"][API + op.path][op.method.lower()]
        status = "202" if op.task else "200"
        schema = described["responses"][status]["content"]["application/json"]["schema"]
        expected = "TaskRef" if op.task else op.result.__name__
        assert schema == {"$ref": f"#/components/schemas/{expected}"}, (op.name, schema)
        assert described["operationId"] == op.name
    for path in ("/vms", "/vms/{host}/{name}", "/vms/{host}/{name}/facts"):
        answer = spec["paths"][API + path]["get"]["responses"]["200"]
        assert "$ref" in answer["content"]["application/json"]["schema"], path
    view = spec["components"]["schemas"]["VmView"]["properties"]
    assert view["actions"]["type"] == "array"


@pytest.fixture
def halted_domain() -> Iterator[libvirt.virDomain]:
    """A defined, halted domain (nothing to boot: its definition is what `vm set` changes)."""
    conn = libvirt.open(URI)
    name = f"gp-set-{uuid.uuid4().hex[:8]}"
    dom = conn.defineXML(f"""<domain type='qemu'>
  <name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
</domain>""")
    yield dom
    try:
        dom.undefine()
    except libvirt.libvirtError:
        pass
    conn.close()


def resources(dom: libvirt.virDomain) -> dict[str, Any]:
    root = ElementTree.fromstring(dom.XMLDesc(libvirt.VIR_DOMAIN_XML_INACTIVE))
    vcpu = root.find("vcpu")
    return {"vcpu": vcpu.text, "vcpu_current": vcpu.get("current"),
            "memory": root.findtext("memory"), "current": root.findtext("currentMemory")}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_vm_set_changes_the_definition_through_the_api_and_the_cli(
        client: TestClient, database: Database, halted_domain: libvirt.virDomain,
        capsys: pytest.CaptureFixture[str]) -> None:
    name = halted_domain.name()
    add_vm(database, name, "halted")
    otto = login(client, "otto")
    path = f"{API}/vms/local/{name}/resources"
    refused = client.patch(path, headers=otto, json={})
    assert refused.status_code == 422 and "cpus" in refused.text
    assert client.patch(path, headers=otto, json={"cpus": 0}).status_code == 422
    assert client.patch(path, headers=login(client, "vera"), json={"cpus": 2}
                        ).status_code == 403
    done = client.patch(path, headers=otto, json={"cpus": 3, "memory_mib": 384})
    assert done.status_code == 200, done.text
    assert done.json() == {"cpus": 3, "memory_mib": 384, "applies": "at the next boot"}
    assert resources(halted_domain) == {"vcpu": "3", "vcpu_current": None,
                                        "memory": str(384 << 10), "current": str(384 << 10)}
    assert ("otto", "vm.set", f"local/{name}", 200) in audited(database)
    # Lower, from the command line (the maximum first, the current value follows it).
    made = run_cli(capsys, "vm", "set", name, "--cpus", "2", "--memory", "256")
    assert made.code == 0, made.err
    assert made.out.strip() == f"VM {name}: 2 vCPUs, 256 MiB from its next boot"
    assert resources(halted_domain) == {"vcpu": "2", "vcpu_current": None,
                                        "memory": str(256 << 10), "current": str(256 << 10)}
    only_cpus = run_cli(capsys, "vm", "set", name, "--cpus", "1")
    assert only_cpus.code == 0 and resources(halted_domain)["memory"] == str(256 << 10)
    nothing = run_cli(capsys, "vm", "set", name)
    assert nothing.code == 2 and "give --cpus, --memory or both" in nothing.err
    missing = run_cli(capsys, "vm", "set", f"{name}-gone", "--cpus", "1")
    assert missing.code == 6 and f"no VM named '{name}-gone'" in missing.err


@pytest.fixture
def domain_with_a_disk(tmp_path: Path) -> Iterator[libvirt.virDomain]:
    """A defined, halted domain with a qcow2 disk: enough for internal snapshots."""
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    conn = libvirt.open(URI)
    dom = conn.defineXML(f"""<domain type='qemu'>
  <name>gp-snap-{uuid.uuid4().hex[:8]}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
    <source file='{disk}'/><target dev='vda' bus='virtio'/></disk></devices>
</domain>""")
    yield dom
    for name in dom.snapshotListNames():
        dom.snapshotLookupByName(name).delete()
    dom.undefine()
    conn.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_snapshot_the_vm_lacks_is_refused_before_any_task(
        client: TestClient, database: Database,
        domain_with_a_disk: libvirt.virDomain) -> None:
    """The host is asked at request time: a made-up snapshot is a 404 naming the ones there
    are, not a queued task that would only fail later."""
    name = domain_with_a_disk.name()
    add_vm(database, name, "halted")
    otto = login(client, "otto")
    base = f"{API}/vms/local/{name}/snapshots"
    none_yet = client.post(f"{base}/never-taken/revert", headers=otto)
    assert none_yet.status_code == 404, none_yet.text
    assert none_yet.json()["detail"] == \
        f"VM {name} on host local has no snapshot named 'never-taken' (it has none: take " \
        "one with `glasspane vm snapshot`)"
    domain_with_a_disk.snapshotCreateXML("<domainsnapshot><name>s1</name></domainsnapshot>")
    made_up = client.post(f"{base}/s2/revert", headers=otto)
    assert made_up.status_code == 404
    assert made_up.json()["detail"].endswith("named 's2' (its snapshots: s1)")
    with database.session() as session:
        assert session.scalars(select(Task)).all() == []
    assert ("otto", "vm.revert", f"local/{name}", 404) in audited(database)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_vm_export_runs_as_its_operations_task(
        app: FastAPI, client: TestClient, database: Database, settings: Any,
        halted_domain: libvirt.virDomain, tmp_path: Any) -> None:
    import subprocess

    from glasspane.hypervisors.libvirt_driver import LibvirtDriver
    name = halted_domain.name()
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"], check=True)
    driver = LibvirtDriver("local", URI)
    driver.ensure_storage(settings.vm_storage)
    driver.upload_volume(settings.vm_storage, f"{name}.qcow2", str(disk), lambda n: None)
    try:
        add_vm(database, name, "halted")
        otto = login(client, "otto")
        queued = client.post(f"{API}/vms/local/{name}/export", headers=otto,
                             json={"output": f"{name}.vhd"})
        assert queued.status_code == 202, queued.text
        with database.session() as session:
            task = session.get(Task, queued.json()["id"])
            assert task is not None and task.pinned_to == app.state.services.instance
        claimed = app.state.worker.claim()
        assert claimed is not None
        app.state.worker.run(*claimed)
        done = client.get(f"{API}/tasks/{queued.json()['id']}", headers=otto).json()
        assert done["state"] == "succeeded", done["error"]
        assert done["result"]["format"] == "vhd" and done["result"]["name"] == f"{name}.vhd"
        assert done["result"]["created_by"] == "otto"
        assert str(settings.data_dir) not in str(done["result"])
        stored = client.get(f"{API}/images/{name}.vhd", headers=otto)
        assert stored.status_code == 200, stored.text
    finally:
        driver.delete_volume(settings.vm_storage, f"{name}.qcow2")
        driver.close()
