"""The listings' filters and paging, whose statements are built once per filter shape with
the values bound: every combination answers what it did when each request built its own,
and a search takes `%`, `_` and `/` literally (they are escaped by hand for the bound
value, as SQLAlchemy's autoescape did for a literal one)."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select

from glasspane.inventory.db import Database
from glasspane.inventory.models import Container, Host, Vm
from tests.api.conftest import login

API = "/api/v1"
VMS = {"h1": [("a_b", "running"), ("axb", "running"), ("c%d", "halted"), ("cxd", "halted"),
              ("e/f", "running")],
       "h2": [("a_b", "halted"), ("zz", "running")]}


def populate(database: Database) -> None:
    with database.session() as session:
        for host_name, vms in VMS.items():
            host = Host(name=host_name, uri="qemu:///system", driver="libvirt", state="ok")
            session.add(host)
            session.flush()
            for name, state in vms:
                vm = Vm(host_id=host.id, name=name, uuid=f"{host_name}-{name}",
                        power_state=state)
                session.add(vm)
                session.flush()
                for n, c_state in enumerate(["running", "exited", "running"]):
                    session.add(Container(vm_id=vm.id, engine_id=f"{vm.id}-{n}",
                                          name=f"{name}-app{n}", image="i", state=c_state))
        assert len(session.scalars(select(Vm)).all()) == 7


def test_filters_paging_and_literal_search(client: TestClient, database: Database) -> None:
    populate(database)
    headers = login(client, "vera")

    def listed(path: str) -> tuple[int, list[str]]:
        response = client.get(API + path, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        return body["total"], ["/".join(item[key] for key in ("host", "vm", "name")
                                        if key in item) for item in body["items"]]

    assert listed("/vms?q=_") == (2, ["h1/a_b", "h2/a_b"])         # not every name
    assert listed("/vms?q=%25") == (1, ["h1/c%d"])                  # not every name
    assert listed("/vms?q=/") == (1, ["h1/e/f"])                    # the escape itself
    assert listed("/vms?q=x") == (2, ["h1/axb", "h1/cxd"])
    assert listed("/vms?host=h1&state=running") == (3, ["h1/a_b", "h1/axb", "h1/e/f"])
    assert listed("/vms?host=h1&state=running&q=a") == (2, ["h1/a_b", "h1/axb"])
    assert listed("/vms?state=halted&limit=1&offset=1") == (3, ["h1/cxd"])
    assert listed("/vms?host=h2&limit=1") == (2, ["h2/a_b"])
    assert listed("/vms?host=nowhere") == (0, [])
    assert listed("/containers?q=_b-") == (6, [f"h{h}/a_b/a_b-app{n}" for h in (1, 2)
                                               for n in range(3)])
    assert listed("/containers?host=h1&vm=c%25d&state=running") == (
        2, ["h1/c%d/c%d-app0", "h1/c%d/c%d-app2"])
    assert listed("/containers?vm=a_b&state=exited") == (
        2, ["h1/a_b/a_b-app1", "h2/a_b/a_b-app1"])
    assert listed("/containers?host=h2&limit=2&offset=2") == (6, ["h2/a_b/a_b-app2",
                                                                   "h2/zz/zz-app0"])
    assert listed("/containers?q=%25d-app1&host=h1") == (1, ["h1/c%d/c%d-app1"])
    assert listed("/hosts?limit=1&offset=1") == (3, ["h2"])  # h1, h2, local
