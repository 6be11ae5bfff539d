"""The REST API on SQLite and PostgreSQL: authentication on every endpoint, roles, the audit
trail, bad input answered with 4xx (never 500), tasks with progress and cancellation, live
events resumable with Last-Event-ID, and two instances sharing one PostgreSQL database."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from glasspane.errors import UsageError
from glasspane.inventory import tasks
from glasspane.inventory.db import Database
from glasspane.inventory.models import Host, Task, Vm
from tests.api.conftest import login, read_events, serve
from tests.waiting import wait_for

API = "/api/v1"


@tasks.handler("test.count")
def _count(context: tasks.TaskContext) -> dict[str, Any]:
    """A task for tests: counts to `steps`, reporting progress, checking for cancellation,
    failing when asked to."""
    steps = int(context.params.get("steps", 3))
    for step in range(steps):
        context.check()
        context.progress(int(100 * step / steps), f"step {step + 1} of {steps}")
        time.sleep(float(context.params.get("pause", 0)))
    if context.params.get("fail"):
        raise UsageError("asked to fail")
    return {"counted": steps}


def add_vm(database: Database, name: str = "web-1", state: str = "running",
           host_name: str = "local") -> None:
    with database.session() as session:
        host = session.scalar(select(Host).where(Host.name == host_name))
        if host is None:
            host = Host(name=host_name, uri="qemu:///system", driver="libvirt", state="ok")
            session.add(host)
            session.flush()
        session.add(Vm(host_id=host.id, name=name, uuid=name, power_state=state))


def test_every_endpoint_but_login_and_health_needs_a_token(client: TestClient) -> None:
    spec = client.get(f"{API}/openapi.json").json()
    assert client.get(f"{API}/health").json()["status"] == "ok"
    checked = 0
    for path, methods in spec["paths"].items():
        if path in (f"{API}/health", f"{API}/auth/login"):
            continue
        concrete = path.replace("{task_id}", "1")
        for part in ("{host}", "{vm}", "{name}", "{action}"):
            concrete = concrete.replace(part, "x")
        for method in methods:
            response = client.request(method.upper(), concrete, json={})
            assert response.status_code == 401, (method, path, response.text)
            checked += 1
    assert checked >= 20


def test_login_tokens_and_rate_limit(client: TestClient) -> None:
    assert client.post(f"{API}/auth/login", json={"name": "vera", "password": "nope"}
                       ).status_code == 401
    assert client.post(f"{API}/auth/login", json={"name": "ghost", "password": "nope"}
                       ).status_code == 401
    headers = login(client, "vera")
    assert client.get(f"{API}/auth/me", headers=headers).json() == {"name": "vera",
                                                                    "role": "viewer"}
    assert client.get(f"{API}/vms", headers={"Authorization": "Bearer gp_forged"}
                      ).status_code == 401
    # The session cookie works for reads; changes through it need the anti-CSRF header.
    assert client.get(f"{API}/vms").status_code == 200
    assert client.post(f"{API}/auth/logout").status_code == 403
    assert client.post(f"{API}/auth/logout", headers={"X-Glasspane": "1"}).status_code == 200
    # Logging out revoked the token (the cookie's and the header's are one and the same).
    assert client.get(f"{API}/vms", headers=headers).status_code == 401
    for _ in range(5):
        client.post(f"{API}/auth/login", json={"name": "otto", "password": "wrong"})
    limited = client.post(f"{API}/auth/login",
                          json={"name": "otto", "password": "operator-password"})
    assert limited.status_code == 429 and int(limited.headers["Retry-After"]) > 0


def test_roles(client: TestClient, database: Database) -> None:
    add_vm(database, "web-1", "halted")
    viewer, operator, admin = (login(client, n) for n in ("vera", "otto", "ada"))
    assert client.get(f"{API}/vms", headers=viewer).json()["total"] == 1
    action = f"{API}/vms/local/web-1/actions/start"
    refused = client.post(action, headers=viewer)
    assert refused.status_code == 403 and "needs operator" in refused.json()["detail"]
    assert client.get(f"{API}/users", headers=operator).status_code == 403
    assert client.get(f"{API}/audit", headers=operator).status_code == 403
    accepted = client.post(action, headers=operator)
    assert accepted.status_code == 202 and accepted.json()["state"] == "queued"
    made = client.post(f"{API}/users", headers=admin,
                       json={"name": "nina", "password": "long-enough", "role": "viewer"})
    assert made.status_code == 201
    token = client.post(f"{API}/users/nina/tokens", headers=admin, json={"name": "ci"})
    secret = token.json()["token"]
    assert client.get(f"{API}/auth/me", headers={"Authorization": f"Bearer {secret}"}
                      ).json()["name"] == "nina"
    listed = client.get(f"{API}/users/nina/tokens", headers=admin).json()
    assert listed[0]["name"] == "ci" and secret not in str(listed)  # shown once, stored hashed


def test_audit_trail(client: TestClient, database: Database) -> None:
    add_vm(database, "web-1", "halted")
    viewer, operator, admin = (login(client, n) for n in ("vera", "otto", "ada"))
    client.post(f"{API}/vms/local/web-1/actions/start", headers=viewer)
    task = client.post(f"{API}/vms/local/web-1/actions/start", headers=operator).json()
    client.post(f"{API}/vms/local/web-1/actions/resume", headers=operator)  # 409
    entries = client.get(f"{API}/audit", headers=admin).json()["items"]
    summary = [(e["user"], e["action"], e["object_name"], e["outcome"], e["status_code"])
               for e in entries]
    assert ("vera", "vm.start", "local/web-1", "denied", 403) in summary
    assert ("otto", "vm.start", "local/web-1", "accepted", 202) in summary
    assert ("otto", "vm.resume", "local/web-1", "rejected", 409) in summary
    assert any(e["detail"] == f"task {task['id']}" for e in entries)
    assert ("otto", "login", "otto", "succeeded", 200) in summary
    # Append-only: the API has no way to change or remove entries.
    assert client.delete(f"{API}/audit", headers=admin).status_code == 405
    assert client.put(f"{API}/audit", headers=admin, json={}).status_code == 405


def test_bad_input_is_a_clear_4xx(client: TestClient, database: Database) -> None:
    add_vm(database, "web-1", "running")
    operator = login(client, "otto")
    cases = [
        (client.post(f"{API}/vms", headers={**operator, "Content-Type": "application/json"},
                     content=b'{"name": "x",'), 422),
        (client.post(f"{API}/vms", headers=operator,
                     json={"name": "web-2", "template": "t", "colour": "red"}), 422),
        (client.post(f"{API}/vms", headers=operator,
                     json={"name": "web-2", "template": "t", "cpus": "many"}), 422),
        (client.post(f"{API}/vms", headers=operator,
                     json={"name": "Bad Name!", "template": "t"}), 422),
        (client.post(f"{API}/vms", headers=operator,
                     json={"name": "web-2", "template": "x" * 2_000_000}), 413),
        (client.post(f"{API}/vms", headers=operator,
                     json={"name": "web-2", "template": "none"}), 404),
        (client.get(f"{API}/vms/local/ghost", headers=operator), 404),
        (client.get(f"{API}/tasks/999999", headers=operator), 404),
        (client.post(f"{API}/vms/local/web-1/actions/start", headers=operator), 409),
        (client.post(f"{API}/vms/local/web-1/actions/explode", headers=operator), 404),
        (client.post(f"{API}/containers/local/web-1", headers=operator,
                     json={"image": "x", "ports": ["http"]}), 400),
        (client.get(f"{API}/vms?limit=0", headers=operator), 422),
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)
        detail = response.json()["detail"]
        assert detail, response.text
    running = client.post(f"{API}/vms/local/web-1/actions/start", headers=operator).json()
    assert running["detail"] == "VM web-1 on host local is running: start needs it halted"


def test_tasks_progress_result_failure_and_cancel(app: FastAPI, client: TestClient,
                                                  database: Database) -> None:
    operator = login(client, "otto")
    done = tasks.submit(database, "test.count", "vm", "local/web-1", {"steps": 4}, "otto")
    failing = tasks.submit(database, "test.count", "vm", "local/web-1", {"fail": True}, "otto")
    queued = tasks.submit(database, "test.count", "vm", "local/web-1", {}, "otto",
                          cancellable=True)
    worker = app.state.worker
    for _ in range(2):
        claimed = worker.claim()
        assert claimed is not None
        worker.run(*claimed)
    first = client.get(f"{API}/tasks/{done['id']}", headers=operator).json()
    assert first["state"] == "succeeded" and first["progress"] == 100
    assert first["result"] == {"counted": 4}
    second = client.get(f"{API}/tasks/{failing['id']}", headers=operator).json()
    assert second["state"] == "failed" and second["error"] == "asked to fail"
    cancelled = client.post(f"{API}/tasks/{queued['id']}/cancel", headers=operator).json()
    assert cancelled["state"] == "cancelled"
    assert worker.claim() is None  # nothing left to run
    again = client.post(f"{API}/tasks/{queued['id']}/cancel", headers=operator)
    assert again.status_code == 400 and "already cancelled" in again.json()["detail"]
    assert client.post(f"{API}/tasks/{done['id']}/cancel", headers=operator).status_code == 400
    states = {t["id"]: t["state"] for t in
              client.get(f"{API}/tasks", headers=operator).json()["items"]}
    assert states == {done["id"]: "succeeded", failing["id"]: "failed",
                      queued["id"]: "cancelled"}


def test_running_task_cancelled_between_steps(app: FastAPI, client: TestClient,
                                              database: Database) -> None:
    operator = login(client, "otto")
    task = tasks.submit(database, "test.count", "vm", "local/web-1",
                        {"steps": 50, "pause": 0.1}, "otto", cancellable=True)
    claimed = app.state.worker.claim()
    assert claimed is not None
    runner = threading.Thread(target=app.state.worker.run, args=claimed)
    runner.start()

    def between_steps() -> bool:
        shown = client.get(f"{API}/tasks/{task['id']}", headers=operator).json()
        return bool(shown["state"] == "running" and shown["progress"] > 0)
    wait_for(between_steps, "the task to be past its first step")
    assert client.post(f"{API}/tasks/{task['id']}/cancel", headers=operator).status_code == 200
    runner.join(30)
    final = client.get(f"{API}/tasks/{task['id']}", headers=operator).json()
    assert final["state"] == "cancelled" and 0 < final["progress"] < 100


def test_live_events_and_resume(app: FastAPI, database: Database) -> None:
    server = serve(app)
    try:
        headers = login(httpx.Client(base_url=server.url), "otto")
        task_id: list[int] = []

        def submit_soon() -> None:
            # Once the stream holds its place, it has fixed where it starts: the task's
            # events all come after.
            streams = app.state.streams.open
            wait_for(lambda: streams.get("otto", 0) > 0, "the event stream to open")
            task_id.append(tasks.submit(database, "test.count", "vm", "local/web-1",
                                        {"steps": 2}, "otto")["id"])
            claimed = app.state.worker.claim()
            assert claimed is not None
            app.state.worker.run(*claimed)

        threading.Thread(target=submit_soon).start()
        events = read_events(server.url, headers,
                             lambda seen: any(e["kind"] == "task.finished" for e in seen))
        kinds = [e["kind"] for e in events]
        assert kinds[0] == "task.created" and kinds[-1] == "task.finished"
        assert "task.progress" in kinds
        assert all(e["object_name"] == str(task_id[0]) for e in events)
        ids = [e["id"] for e in events]
        assert ids == sorted(ids)
        # Resuming after the first event replays the rest, in order.
        resumed = read_events(server.url, headers, lambda seen: len(seen) == len(ids) - 1,
                              start={"Last-Event-ID": str(ids[0])})
        assert [e["id"] for e in resumed] == ids[1:]
    finally:
        server.stop()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # SQLite: one instance
def test_two_instances_share_one_postgresql(database_url: str, database: Database,
                                            settings: Any) -> None:
    from glasspane.api.app import create_app
    from glasspane.inventory.db import Database as Db
    other_db = Db.open(settings, database_url)
    first = serve(create_app(settings, database, instance="first", sync_interval=3600))
    second = serve(create_app(settings, other_db, instance="second", sync_interval=3600))
    try:
        headers = login(httpx.Client(base_url=first.url), "otto")
        submitted = [tasks.submit(database, "test.count", "vm", f"local/vm-{i}",
                                  {"steps": 2, "pause": 0.05}, "otto")["id"]
                     for i in range(24)]

        def all_finished(seen: list[dict[str, Any]]) -> bool:
            return sum(e["kind"] == "task.finished" for e in seen) == len(submitted)

        # The second instance's stream carries the events of tasks the first one runs.
        events = read_events(second.url, headers, all_finished, timeout=120,
                             start={"Last-Event-ID": "0"})
        assert all_finished(events)
        with database.session() as session:
            rows = list(session.scalars(select(Task).where(Task.id.in_(submitted))))
        assert all(t.state == "succeeded" for t in rows)
        claimers = {t.claimed_by for t in rows}
        assert claimers == {"first", "second"}, claimers  # both worked, each task once
        finished = [e["object_name"] for e in events if e["kind"] == "task.finished"]
        assert sorted(finished) == sorted(str(i) for i in submitted)  # exactly once each
        # A task whose inputs are on one instance's disk runs there and nowhere else.
        pinned = [tasks.submit(database, "test.count", "image", f"i-{i}", {"steps": 1},
                               "otto", pinned_to="second")["id"] for i in range(6)]
        deadline = time.monotonic() + 60
        while True:
            with database.session() as session:
                rows = list(session.scalars(select(Task).where(Task.id.in_(pinned))))
            if all(t.state == "succeeded" for t in rows):
                break
            assert time.monotonic() < deadline, [t.state for t in rows]
            time.sleep(0.2)
        assert {t.claimed_by for t in rows} == {"second"}
    finally:
        first.stop()
        second.stop()
        other_db.close()


def test_action_on_unreachable_host_fails_its_task_and_keeps_the_inventory(
        app: FastAPI, client: TestClient, database: Database, settings: Any) -> None:
    from glasspane.hosts.registry import HostRecord, HostRegistry
    # Nothing listens on port 1: ssh is refused at once.
    HostRegistry(settings, database).add(HostRecord("far", "qemu+ssh://nobody@127.0.0.1:1/system"))
    add_vm(database, "web-9", "running", host_name="far")
    operator = login(client, "otto")
    task = client.post(f"{API}/vms/far/web-9/actions/reboot", headers=operator).json()
    claimed = app.state.worker.claim()
    assert claimed is not None
    app.state.worker.run(*claimed)
    final = client.get(f"{API}/tasks/{task['id']}", headers=operator).json()
    assert final["state"] == "failed"
    assert "host far" in final["error"] and "cannot connect" in final["error"]
    host = client.get(f"{API}/hosts/far", headers=operator).json()
    assert host["state"] == "unreachable" and "127.0.0.1:1" in host["error"]
    vm = client.get(f"{API}/vms/far/web-9", headers=operator).json()
    assert vm["power_state"] == "running"  # as last seen: not dropped, not guessed


def test_listings_are_cached_until_the_inventory_changes(
        client: TestClient, database: Database, database_url: str, settings: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from sqlalchemy import delete

    from glasspane.api import listing_cache
    from glasspane.inventory.db import Database as Db
    shift = [0.0]
    monkeypatch.setattr(listing_cache, "_now", lambda: time.monotonic() + shift[0])
    headers = login(client, "vera")

    def names(path: str = "/vms") -> list[str]:
        response = client.get(API + path, headers=headers)
        assert response.status_code == 200, response.text
        return [item["name"] for item in response.json()["items"]]

    add_vm(database, "b-vm")
    assert names() == ["b-vm"]
    add_vm(database, "a-vm")  # a write in this process: seen at once, in order
    assert names() == ["a-vm", "b-vm"]
    with database.session() as session:  # a bulk statement too
        session.execute(delete(Vm).where(Vm.name == "b-vm"))
    assert names() == ["a-vm"]
    assert names("/vms?q=a-") == ["a-vm"]

    # A write this process cannot see (another connection pool, no event announced) shows
    # within the cache's lifetime, not at once: the answers did come from the cache.
    other = Db(database_url)
    try:
        add_vm(other, "c-vm")
        assert names() == ["a-vm"]
        shift[0] = 61  # past the longest lifetime of an entry (a minute, on SQLite)
        assert names() == ["a-vm", "c-vm"]
    finally:
        other.close()

    # Whoever asks must still be a user: a cached answer is no answer to a bad token.
    assert client.get(API + "/vms", headers={"Authorization": "Bearer gp_nope"}
                      ).status_code == 401
    assert client.post(API + "/auth/logout", headers=headers).status_code == 200
    assert client.get(API + "/vms", headers=headers).status_code == 401
