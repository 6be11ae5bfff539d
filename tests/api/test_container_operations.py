"""The container operations of the catalogue through the served API: their routes find the
container (404 naming it, its VM and the host), check its state (409 naming the states
needed, nothing queued), store their command as the task's payload, say which operations
each caller may run on each container, and describe their answers in the OpenAPI
document.  The containers are rows put into the inventory: no guest is needed."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from glasspane.inventory import tasks
from glasspane.inventory.db import Database
from glasspane.inventory.models import Container, Host, Task, Vm
from glasspane.operations.catalogue import CATALOGUE
from tests.api.conftest import login
from tests.api.test_api import add_vm
from tests.api.test_operations import audited

API = "/api/v1"


def add_container(database: Database, vm: str, name: str, state: str) -> None:
    with database.session() as session:
        vm_id = session.scalar(select(Vm.id).join(Host).where(Host.name == "local",
                                                              Vm.name == vm))
        session.add(Container(vm_id=vm_id, engine_id=name[:12], name=name, image="nginx",
                              state=state, status="", ports=[], created=""))


def queued(database: Database) -> list[Task]:
    with database.session() as session:
        return list(session.scalars(select(Task)))


def test_a_container_the_inventory_lacks_is_a_404_naming_it(
        client: TestClient, database: Database) -> None:
    add_vm(database, "v1", "running")
    otto = login(client, "otto")
    for action in ("stop", "remove"):
        response = client.post(f"{API}/containers/local/v1/ghost/actions/{action}",
                               headers=otto)
        assert response.status_code == 404, response.text
        assert response.json()["detail"] == "no container 'ghost' in VM v1 on host local"
    no_vm = client.post(f"{API}/containers/local/nowhere/web/actions/start", headers=otto)
    assert no_vm.status_code == 404 and "no VM named 'nowhere'" in no_vm.json()["detail"]
    unknown = client.post(f"{API}/containers/local/v1/ghost/actions/explode", headers=otto)
    assert unknown.status_code == 404 and "unpause" in unknown.json()["detail"]
    assert ("otto", "container.stop", "local/v1/ghost", 404) in audited(database)
    assert queued(database) == []


def test_a_refusal_for_the_containers_state_names_the_state_needed(
        client: TestClient, database: Database) -> None:
    add_vm(database, "v1", "running")
    add_container(database, "v1", "web", "exited")
    add_container(database, "v1", "db", "running")
    otto = login(client, "otto")
    cases = [("web", "stop", "container web on VM v1 (host local) is exited: stop needs it "
                             "running, paused or restarting"),
             ("web", "pause", "container web on VM v1 (host local) is exited: pause needs "
                              "it running"),
             ("db", "start", "container db on VM v1 (host local) is running: start needs it "
                             "created or exited")]
    for name, action, detail in cases:
        response = client.post(f"{API}/containers/local/v1/{name}/actions/{action}",
                               headers=otto)
        assert response.status_code == 409, response.text
        assert response.json()["detail"] == detail
    assert ("otto", "container.stop", "local/v1/web", 409) in audited(database)
    assert queued(database) == []  # nothing queued


def test_the_task_payload_is_the_command(client: TestClient, database: Database) -> None:
    add_vm(database, "v1", "running")
    add_container(database, "v1", "web", "running")
    otto = login(client, "otto")
    stop = client.post(f"{API}/containers/local/v1/web/actions/stop", headers=otto)
    assert stop.status_code == 202, stop.text
    remove = client.post(f"{API}/containers/local/v1/web/actions/remove", headers=otto)
    run = client.post(f"{API}/containers/local/v1", headers=otto,
                      json={"image": "nginx", "name": "web2", "ports": ["8080:80"]})
    assert remove.status_code == 202 and run.status_code == 202, (remove.text, run.text)
    with database.session() as session:
        stored = {t.kind: (t.object_name, t.params) for t in session.scalars(select(Task))}
        for task in session.scalars(select(Task)):
            task.state = "cancelled"  # not run here: there is no such guest
    assert stored["container.stop"] == ("local/v1/web", {"host": "local", "vm": "v1",
                                                         "name": "web", "grace": 10})
    assert stored["container.remove"] == ("local/v1/web", {"host": "local", "vm": "v1",
                                                           "name": "web", "force": True})
    assert stored["container.run"] == ("local/v1/web2", CATALOGUE["container.run"].parse(
        {"host": "local", "vm": "v1", "image": "nginx", "name": "web2",
         "ports": ["8080:80"]}).model_dump(mode="json"))
    assert ("otto", "container.run", "local/v1/web2", 202) in audited(database)


def test_each_container_says_what_the_caller_may_do_to_it_now(
        client: TestClient, database: Database) -> None:
    add_vm(database, "v1", "running")
    add_container(database, "v1", "web", "running")
    add_container(database, "v1", "old", "stopped")  # Podman's word for exited
    vera, otto = login(client, "vera"), login(client, "otto")
    viewed = {c["name"]: c for c in client.get(f"{API}/containers", headers=vera
                                               ).json()["items"]}
    operated = {c["name"]: c for c in client.get(f"{API}/containers", headers=otto
                                                 ).json()["items"]}
    assert viewed["web"]["actions"] == [] and viewed["old"]["actions"] == []
    assert set(operated["web"]["actions"]) == {"container.stop", "container.restart",
                                               "container.pause", "container.remove"}
    assert set(operated["old"]["actions"]) == {"container.start", "container.restart",
                                               "container.remove"}
    detail = client.get(f"{API}/vms/local/v1", headers=otto).json()
    nested = {c["name"]: c["actions"] for c in detail["containers"]}
    assert nested == {"web": operated["web"]["actions"], "old": operated["old"]["actions"]}
    assert all(c["actions"] == [] for c in client.get(f"{API}/vms/local/v1", headers=vera
                                                      ).json()["containers"])


def test_the_openapi_document_describes_every_container_operations_answer(
        client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    container_operations = [op for op in CATALOGUE.values() if op.object_type == "container"]
    assert {op.name for op in container_operations} >= {
        "container.run", "container.start", "container.stop", "container.restart",
        "container.pause", "container.unpause", "container.remove", "container.engine",
        "container.inspect", "container.top", "container.stats"}
    for op in container_operations:
        described = spec["paths"][API + op.path][op.method.lower()]
        status = "202" if op.task else "200"
        schema = described["responses"][status]["content"]["application/json"]["schema"]
        expected = "TaskRef" if op.task else op.result.__name__
        assert schema == {"$ref": f"#/components/schemas/{expected}"}, (op.name, schema)
        assert described["operationId"] == op.name
        if not op.task:  # a read reaches the VM's engine: it may be gone, or not answer
            assert {"404", "409", "502", "503"} <= set(described["responses"]), op.name
    view = spec["components"]["schemas"]["ContainerView"]["properties"]
    assert view["actions"]["type"] == "array"


def test_app_operations_check_the_vm_and_store_their_command(
        client: TestClient, database: Database) -> None:
    add_vm(database, "v1", "running")
    add_vm(database, "v2", "halted")
    otto = login(client, "otto")
    halted = client.delete(f"{API}/vms/local/v2/apps/shop", headers=otto)
    assert halted.status_code == 409, halted.text
    assert halted.json()["detail"] == "VM v2 on host local is halted: start it first"
    no_context = client.post(f"{API}/vms/local/v1/apps", headers=otto,
                             json={"context": "absent.tar"})
    assert no_context.status_code == 404 and "absent.tar" in no_context.json()["detail"]
    assert queued(database) == []
    removing = client.delete(f"{API}/vms/local/v1/apps/shop", headers=otto)
    assert removing.status_code == 202, removing.text
    with database.session() as session:
        task = session.scalars(select(Task)).one()
        assert (task.kind, task.object_name, task.params) == (
            "app.remove", "local/v1", {"host": "local", "vm": "v1", "name": "shop"})
        task.state = "cancelled"  # not run here: there is no such guest
    assert ("otto", "app.remove", "local/v2", 409) in audited(database)
    assert "app.remove" in CATALOGUE and "app.deploy" in CATALOGUE


def test_a_container_action_task_queued_by_the_old_release_runs_as_its_operation(
        app: FastAPI, client: TestClient, database: Database) -> None:
    otto = login(client, "otto")
    # The old kind's payload, with a field no command has: it reaches container.stop's
    # model (which refuses it, naming the field) and never the guest.
    old = tasks.submit(database, "container.action", "container", "local/v1/web",
                       {"host": "local", "vm": "v1", "name": "web", "action": "stop",
                        "force": True, "colour": "s3cret"}, "otto")
    unknown = tasks.submit(database, "container.action", "container", "local/v1/web",
                           {"host": "local", "vm": "v1", "name": "web", "action": "explode"},
                           "otto")
    for _ in range(2):
        claimed = app.state.worker.claim()
        assert claimed is not None
        app.state.worker.run(*claimed)
    stopped = client.get(f"{API}/tasks/{old['id']}", headers=otto).json()
    assert stopped["state"] == "failed"
    assert "(container.stop)" in stopped["error"] and "not a valid Act" in stopped["error"]
    assert "colour: Extra inputs" in stopped["error"] and "s3cret" not in stopped["error"]
    assert "force" not in stopped["error"]
    refused = client.get(f"{API}/tasks/{unknown['id']}", headers=otto).json()
    assert refused["state"] == "failed" and "no such container action" in refused["error"]
