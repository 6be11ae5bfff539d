"""Every route declares the model of its answer, which both documents and filters it; these
are the answers' readers' expectations that the filtering must keep: a field that does not
apply stays absent (the CLI tells a file from a disk image by `info`, a disk image from a VM
archive by `vm`; the page shows a host's `info` as it is), and a value a guest reports outside
glasspane's vocabulary is shown as unknown, not turned into a 500 for the whole listing."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from glasspane.inventory.db import Database
from glasspane.inventory.models import Container, Host, Vm
from tests.api.conftest import login

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
API = "/api/v1"


def test_image_facts_leave_out_what_does_not_apply(client: TestClient, tmp_path: Path) -> None:
    headers = login(client, "otto")
    disk, context = tmp_path / "disk.qcow2", tmp_path / "context.tar"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "1M"], check=True)
    (tmp_path / "app.yaml").write_text("name: site\n")
    with tarfile.open(context, "w") as archive:  # a build context: no disk image
        archive.add(tmp_path / "app.yaml", "app.yaml")
    for path in (disk, context):
        r = client.put(f"{API}/images/{path.name}", content=path.read_bytes(), headers=headers)
        assert r.status_code == 201, r.text

    stored = client.get(f"{API}/images/context.tar", headers=headers).json()
    assert stored["kind"] == "tar" and "info" not in stored

    info = client.get(f"{API}/images/disk.qcow2", headers=headers).json()["info"]
    assert info["format"] == "qcow2" and info["virtual_size"] == 1 << 20
    assert "vm" not in info and "disks" not in info  # a VM archive's fields
    assert "path" not in info  # the server's own path never leaves


def test_hosts_not_yet_seen_have_empty_info(client: TestClient, database: Database) -> None:
    with database.session() as session:
        session.add(Host(name="new", uri="qemu:///system", driver="libvirt", state="unknown"))
    headers = login(client, "vera")
    host = client.get(f"{API}/hosts/new", headers=headers).json()
    assert host["info"] == {} and host["state"] == "unknown"
    listed = client.get(f"{API}/hosts", headers=headers).json()["items"]
    assert [(h["info"], h["vm_count"]) for h in listed if h["name"] == "new"] == [({}, 0)]


def test_a_container_state_outside_the_vocabulary_is_unknown(client: TestClient,
                                                             database: Database) -> None:
    with database.session() as session:
        host = Host(name="kvm1", uri="qemu:///system", driver="libvirt", state="ok")
        session.add(host)
        session.flush()
        vm = Vm(host_id=host.id, name="web", uuid="u-1", power_state="running")
        session.add(vm)
        session.flush()
        for name, state in (("odd", "hibernating"), ("up", "running"), ("podman", "stopped")):
            session.add(Container(vm_id=vm.id, engine_id=name, name=name, image="nginx",
                                  state=state, app="site"))
    headers = login(client, "vera")
    r = client.get(f"{API}/containers", headers=headers)
    assert r.status_code == 200, r.text
    assert {c["name"]: c["state"] for c in r.json()["items"]} == {
        "odd": "unknown", "up": "running", "podman": "exited"}  # Podman's word for it
    apps = client.get(f"{API}/apps", headers=headers).json()
    assert apps == [{"host": "kvm1", "vm": "web", "name": "site", "containers": [
        {"name": "odd", "state": "unknown"}, {"name": "podman", "state": "exited"},
        {"name": "up", "state": "running"}]}]
