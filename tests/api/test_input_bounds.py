"""Inputs the database cannot hold (ids past its integers, NUL characters) are refused as
the caller's mistake (a 4xx naming the input), never carried to the database, where they
would end in a 500 or, in the event stream, in a broken stream after its 200."""

from __future__ import annotations

import dataclasses
import shutil
import tarfile
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from glasspane.api.app import create_app
from glasspane.containers.service import APP_LABEL, _row
from glasspane.guests.ssh import SshTarget
from glasspane.inventory.db import Database
from glasspane.inventory.models import AuditEntry, Vm
from glasspane.inventory.sync import _merge_containers
from glasspane.settings import Settings
from tests.api.conftest import login, serve
from tests.api.test_api import add_vm

API = "/api/v1"


@pytest.mark.parametrize("start", [
    {"params": {"after": str(2**31)}},
    {"params": {"after": "9" * 40}},
    {"headers": {"Last-Event-ID": str(2**63)}},
])
def test_an_event_id_past_what_the_database_holds_is_refused(
        app: FastAPI, start: dict[str, dict[str, str]]) -> None:
    server = serve(app)  # a real server: the old answer was a 200 and a stream cut short
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            vera = login(client, "vera")
            with client.stream("GET", f"{API}/events", params=start.get("params"),
                               headers={**vera, **start.get("headers", {})}) as response:
                assert response.status_code == 422
                response.read()
                assert "less than or equal to" in response.text
    finally:
        server.stop()


def test_a_nul_character_anywhere_in_a_request_is_a_400(client: TestClient,
                                                        database: Database) -> None:
    vera, otto = login(client, "vera"), login(client, "otto")
    for url in (f"{API}/vms?q=%00", f"{API}/hosts/a%00b", f"{API}/vms/local/a%00b",
                f"{API}/containers?vm=a%00", f"{API}/tasks?state=%00"):
        response = client.get(url, headers=vera)
        assert response.status_code == 400, (url, response.text)
        assert "NUL character" in response.json()["detail"]
    refused = [client.post(f"{API}/auth/login", json={"name": "ada\0", "password": "x"}),
               client.post(f"{API}/vms", headers=otto,
                           json={"name": "abc", "template": "debian\0"}),
               client.post(f"{API}/vms/local/x%00/actions/start", headers=otto),
               client.post(f"{API}/vms/configure", headers=otto,
                           json={"vms": ["a\0"], "playbook": "- hosts: all\n"})]
    for response in refused:
        assert response.status_code == 400, response.text
        assert "NUL character" in response.json()["detail"]
    # Each refused change is in the audit log, its NUL shown rather than stored.
    with database.session() as session:
        paths = session.scalars(select(AuditEntry.object_name)).all()
    assert "/api/v1/vms/local/x\\0/actions/start" in paths
    # A backslash followed by the text u0000 is no NUL.
    response = client.post(f"{API}/vms", headers=otto,
                           json={"name": "abc", "template": "\\u0000"})
    assert response.status_code == 404 and "no template" in response.json()["detail"]


def test_a_task_on_a_long_name_is_queued_with_its_name_cut_to_the_column(
        client: TestClient, database: Database) -> None:
    # host/VM/image can be longer than a task's object name holds (the image alone may be
    # 512 characters): on PostgreSQL the insert failed, a 500.
    vm = "v" * 60
    add_vm(database, vm)
    image = "registry.example.com/" + "i" * 489 + ":1"
    assert len(image) == 512
    response = client.post(f"{API}/containers/local/{vm}", headers=login(client, "otto"),
                           json={"image": image})
    assert response.status_code == 202, response.text
    assert response.json()["object_name"] == f"local/{vm}/{image}"[:512]


def test_what_a_guest_engine_reports_is_kept_within_the_inventory_columns(
        client: TestClient, database: Database, tmp_path: Path) -> None:
    # The engine in a VM is the guest's: what it says of its containers (as /containers/json
    # would, crafted) must not fail the inventory pass, which would stop every other VM's
    # containers from being seen too.
    add_vm(database, "web-1")
    target = SshTarget("local", "web-1", "web-1", "192.0.2.1", "glasspane",
                       tmp_path / "key", tmp_path / "known_hosts")
    hostile = {"Id": "a" * 80, "Names": ["/" + "n" * 300], "Image": "i\0" * 400,
               "State": "running-but-longer", "Status": "s" * 300, "Created": 10**20,
               "Ports": [{"PrivatePort": "p" * 100, "Type": "tcp"}],
               "Labels": {APP_LABEL: "app" * 30}}
    twin = {**hostile, "Names": ["/" + "n" * 300 + "-other"]}  # alike once cut
    rows = [_row(target, item) for item in (hostile, twin)]
    with database.session() as session:
        vm = session.scalar(select(Vm).where(Vm.name == "web-1"))
        assert vm is not None
        _merge_containers(session, "local", vm, rows)
    listed = client.get(f"{API}/containers", headers=login(client, "vera")).json()["items"]
    assert [(c["name"], len(c["image"]), c["state"], c["app"]) for c in listed] == \
        [("n" * 255, 400, "unknown", ("app" * 30)[:64])]  # a state outside the vocabulary


def test_a_viewers_validation_does_not_unpack_past_the_stores_free_space(
        client: TestClient, settings: Settings, database: Database, tmp_path: Path) -> None:
    # Validating unpacks the context (a viewer may ask, as often as they like): it keeps the
    # room the store keeps free, as an upload does, rather than fill the server's disk.
    spec = tmp_path / "template.yaml"
    spec.write_text("name: web\nsource: {image: disk.qcow2}\noutputs: [{format: qcow2}]\n")
    archive = tmp_path / "context.tar"
    with tarfile.open(archive, "w") as packed:
        packed.add(spec, arcname="template.yaml")
    stored = client.put(f"{API}/images/context.tar", content=archive.read_bytes(),
                        headers=login(client, "otto"))
    assert stored.status_code == 201, stored.text
    free = shutil.disk_usage(settings.data_dir).free
    tight = create_app(dataclasses.replace(settings, store_reserve=free + (1 << 30)), database,
                       background=False)
    with TestClient(tight) as other:
        response = other.post(f"{API}/templates/validate", headers=login(other, "vera"),
                              json={"context": "context.tar"})
    assert response.status_code == 507, response.text
    assert "MiB it keeps free" in response.json()["detail"]
    images = settings.data_dir / "images"
    assert sorted(p.name for p in images.iterdir()) == ["context.tar", "context.tar.meta.json"]
