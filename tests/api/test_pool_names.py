"""A XenServer pool's names are not glasspane's to choose: XAPI lets any number of VMs (and
templates) share a name_label, of any length.  Such a pool stays in the inventory (it was
called unreachable, or its pass failed on the database's unique names and column sizes):
the VMs glasspane can name are listed; the others are left out until renamed, said in the
log."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient

from glasspane.inventory.sync import sync_hosts
from glasspane.settings import Settings
from tests.api.conftest import login
from tests.api.test_ansible_security import password_file, pool, xapi  # noqa: F401 - fixtures
from tests.xapi.server import Running

API = "/api/v1"


def test_vms_and_templates_named_alike_or_too_long_leave_the_pool_in_the_inventory(
        client: TestClient, settings: Settings, pool: Running,  # noqa: F811 - the fixture
        database: Any, caplog: pytest.LogCaptureFixture) -> None:
    objects = pool.xapi.objects["VM"]
    db = next(r for r, v in objects.items() if v["name_label"] == "db-1")
    objects[db]["name_label"] = "web-1"  # beside the running web-1
    template = next(r for r, v in objects.items() if v["name_label"] == "debian-12")
    twin = pool.xapi.add("VM", **{**objects[template], "uuid": "twin-of-debian-12"})
    assert objects[twin]["name_label"] == "debian-12"
    long_name = "a-vm-named-at-length-" + "x" * 200
    pool.xapi.add("VM", **{**objects[db], "name_label": long_name, "uuid": "long-one"})
    with caplog.at_level(logging.WARNING, logger="glasspane"):
        sync_hosts(database, settings)
    viewer = login(client, "vera")
    host = client.get(f"{API}/hosts/xcp", headers=viewer).json()
    assert host["state"] == "ok", host
    vms = client.get(f"{API}/vms", params={"host": "xcp"}, headers=viewer).json()["items"]
    assert [v["name"] for v in vms] == []  # both web-1, and the long one
    templates = client.get(f"{API}/templates", params={"host": "xcp"},
                           headers=viewer).json()["items"]
    assert "debian-12" not in [t["name"] for t in templates]
    assert "2 VMs are named 'web-1'" in caplog.text
    assert "2 templates are named 'debian-12'" in caplog.text
    assert "a VM's name of 221 characters is left out" in caplog.text
    objects[db]["name_label"] = "db-1"  # renamed: back in the inventory
    sync_hosts(database, settings)
    vms = client.get(f"{API}/vms", params={"host": "xcp"}, headers=viewer).json()["items"]
    assert [v["name"] for v in vms] == ["db-1", "web-1"]
