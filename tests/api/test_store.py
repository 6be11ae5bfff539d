"""The image store through a real server: uploads streamed to disk (never over the body
limit, never half-stored), facts, downloads, conversion/check/compare as tasks, roles, bad
names; and the CLI's `--server` for the store, image operations, hosts and templates
(local files sent for the command, `@NAME` for stored ones, outputs downloaded)."""

from __future__ import annotations

import hashlib
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from glasspane.api.app import create_app
from glasspane.images.sample import write_sample
from glasspane.inventory.db import Database
from glasspane.settings import Settings
from tests.api.conftest import PASSWORDS, Server, login, serve
from tests.cli.runner import run_cli
from tests.hypervisors.conftest import libvirt_conn, storage  # noqa: F401 - own pools
from tests.images.helpers import assert_same, convert_to
from tests.waiting import wait_for

pytestmark = [pytest.mark.integration,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]
MIB = 1 << 20


@pytest.fixture
def server(settings: Settings, database: Database) -> Iterator[Server]:
    running = serve(create_app(settings, database, sync_interval=2))
    yield running
    running.stop()


def test_the_server_knows_its_hosts_before_its_first_pass(settings: Settings,
                                                          database: Database) -> None:
    """A template import for the built-in host was refused ("no host named 'local'") when
    it came before the first inventory pass had written the host's row."""
    from glasspane.inventory.sync import hosts_lock
    with hosts_lock:  # the first pass looks, but cannot write its rows yet
        running = serve(create_app(settings, database, sync_interval=2))
        try:
            with httpx.Client(base_url=running.url, timeout=30) as client:
                client.headers.update(login(client, "vera"))
                r = client.get("/api/v1/hosts/local")
                assert r.status_code == 200 and r.json()["state"] == "unknown", r.text
        finally:
            hosts_lock.release()
            running.stop()
            hosts_lock.acquire()


def wait_task(client: httpx.Client, task: dict[str, Any], timeout: float = 120
              ) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while task["state"] not in ("succeeded", "failed", "cancelled"):
        assert time.monotonic() < deadline, task
        time.sleep(0.2)
        task = client.get(f"/api/v1/tasks/{task['id']}").json()
    return task


def test_store_over_the_api(server: Server, settings: Settings, tmp_path: Path) -> None:
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 8 * MIB)
    qcow2 = convert_to(raw, tmp_path / "disk.qcow2")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        client.headers.update(login(client, "otto"))
        # 3 MiB: over the 1 MiB limit of other bodies, streamed to disk in chunks.
        body = qcow2.read_bytes()
        assert len(body) > MIB
        r = client.put("/api/v1/images/disk.qcow2", content=iter([body[:MIB], body[MIB:]]))
        assert r.status_code == 201, r.text
        stored = r.json()
        assert stored["kind"] == "qcow2" and stored["size"] == len(body)
        assert stored["sha256"] == hashlib.sha256(body).hexdigest()
        assert stored["created_by"] == "otto"
        files = settings.data_dir / "images"
        assert (files / "disk.qcow2").stat().st_mode & 0o777 == 0o600
        assert [i["name"] for i in client.get("/api/v1/images").json()] == ["disk.qcow2"]
        info = client.get("/api/v1/images/disk.qcow2").json()["info"]
        assert info["format"] == "qcow2" and info["virtual_size"] == 8 * MIB
        assert client.get("/api/v1/images/disk.qcow2/content").content == body

        r = client.put("/api/v1/images/disk.qcow2", content=b"x")
        assert r.status_code == 409 and "already stored" in r.json()["detail"]
        for bad in (".hidden", "a b", "x" * 200, "a.meta.json"):
            r = client.put(f"/api/v1/images/{bad}", content=b"x")
            assert r.status_code == 400, (bad, r.text)
        r = client.put("/api/v1/images/..%2Fescape", content=b"x")
        assert r.status_code in (400, 404) and not (settings.data_dir / "escape").exists()
        # A declared size the disk cannot hold is refused before a byte is written.
        host, port = server.url.removeprefix("http://").split(":")
        token = client.headers["Authorization"]
        with socket.create_connection((host, int(port))) as raw_s:
            raw_s.sendall(f"PUT /api/v1/images/huge.raw HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: {token}\r\nContent-Length: {1 << 50}\r\n\r\n"
                          .encode())
            answer = ""
            while "}" not in answer:  # the headers and the body may come apart
                answer += raw_s.recv(65536).decode()
        assert answer.startswith("HTTP/1.1 507") and "MiB free" in answer, answer
        assert not (files / "huge.raw").exists()
        assert client.get("/api/v1/images/nothing").status_code == 404

        # A cut-off upload leaves nothing, not even a partial file.
        with socket.create_connection((host, int(port))) as raw_s:
            raw_s.sendall(f"PUT /api/v1/images/cut.raw HTTP/1.1\r\nHost: x\r\n"
                          f"Authorization: {token}\r\nContent-Length: {4 * MIB}\r\n\r\n"
                          .encode() + b"\0" * MIB)
        # The request's audit row is written once the server has given up on it.
        admin = login(client, "ada")
        wait_for(lambda: any(
            a["object_name"] == "cut.raw" for a in client.get(
                "/api/v1/audit", params={"action": "image.put"}, headers=admin).json()["items"]),
            "the server to end the cut-off upload")
        deadline = time.monotonic() + 10
        while [p for p in files.iterdir() if p.name.startswith(".")]:  # staging removed
            assert time.monotonic() < deadline, list(files.iterdir())
            time.sleep(0.2)
        assert sorted(p.name for p in files.iterdir()) == ["disk.qcow2",
                                                           "disk.qcow2.meta.json"]

        # Conversion, check and comparison are tasks.
        task = client.post("/api/v1/images/disk.qcow2/convert",
                           json={"output": "disk.vhd"}).json()
        done = wait_task(client, task)
        assert done["state"] == "succeeded", done
        assert done["result"]["outputs"][0]["kind"] == "vhd"
        assert "identical" in done["result"]["verified"][0]
        out = tmp_path / "back.vhd"
        out.write_bytes(client.get("/api/v1/images/disk.vhd/content").content)
        assert_same(raw, out)
        done = wait_task(client, client.post("/api/v1/images/disk.vhd/check").json())
        assert done["result"] == {"format": "vhd", "ok": True, "problems": []}
        done = wait_task(client, client.post("/api/v1/images/compare", json={
            "a": "disk.qcow2", "b": "disk.vhd"}).json())
        assert done["result"]["identical"] is True
        r = client.post("/api/v1/images/disk.qcow2/convert", json={"output": "disk.vhd"})
        assert r.status_code == 409
        r = client.post("/api/v1/images/disk.qcow2/convert", json={"output": "x.vhd",
                                                                   "format": "floppy"})
        assert r.status_code == 422

        viewer = httpx.Client(base_url=server.url, timeout=30)
        viewer.headers.update(login(viewer, "vera"))
        assert viewer.get("/api/v1/images").status_code == 200
        assert viewer.put("/api/v1/images/v.raw", content=b"x").status_code == 403
        assert viewer.delete("/api/v1/images/disk.vhd").status_code == 403
        viewer.close()
        assert client.delete("/api/v1/images/disk.vhd").json() == {"deleted": "disk.vhd"}
        assert client.get("/api/v1/images/disk.vhd").status_code == 404
        audit = [(a["action"], a["outcome"]) for a in
                 client.get("/api/v1/audit", headers=login(client, "ada")).json()["items"]]
        assert ("image.put", "succeeded") in audit and ("image.delete", "denied") in audit


def _cli_login(capsys: pytest.CaptureFixture[str], url: str, user: str, tmp_path: Path
               ) -> None:
    password = tmp_path / f"{user}.pw"
    password.write_text(PASSWORDS[user])
    r = run_cli(capsys, "--server", url, "login", user, "--password-file", str(password))
    assert r.code == 0, r.err


def test_cli_images_hosts_and_templates_through_the_server(
        capsys: pytest.CaptureFixture[str], server: Server, settings: Settings,
        storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    monkeypatch.delenv("GLASSPANE_TOKEN", raising=False)
    url = server.url
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 8 * MIB)
    qcow2 = convert_to(raw, tmp_path / "disk.qcow2")
    _cli_login(capsys, url, "otto", tmp_path)

    def cli(*args: str) -> Any:
        return run_cli(capsys, "--server", url, *args)

    r = cli("image", "put", str(qcow2), "base.qcow2")
    assert r.code == 0 and "stored base.qcow2: qcow2" in r.out, r.err
    r = cli("image", "list", "--json")
    assert [i["name"] for i in json.loads(r.out)] == ["base.qcow2"]
    r = cli("image", "info", "@base.qcow2", "--json")
    assert json.loads(r.out)["virtual_size"] == 8 * MIB, r.err
    # A local file sent for one command, converted on the server, downloaded, verified there.
    r = cli("image", "convert", str(raw), str(tmp_path / "out.vhd"), "--verify", "--quiet")
    assert r.code == 0 and f"wrote {tmp_path / 'out.vhd'}: vhd" in r.out, r.err
    assert "verified" in r.out
    assert_same(raw, tmp_path / "out.vhd")
    r = cli("image", "convert", "@base.qcow2", "@kept.xva", "--name", "kept", "--quiet")
    assert r.code == 0, r.err
    r = cli("image", "check", "@kept.xva")
    assert r.code == 0 and "xva: no problems found" in r.out, r.out + r.err
    r = cli("image", "compare", "@kept.xva", str(qcow2))
    assert r.code == 0 and "identical" in r.out, r.out + r.err
    r = cli("image", "get", "kept.xva", str(tmp_path / "kept.xva"))
    assert r.code == 0 and "wrote" in r.out, r.err
    assert_same(raw, tmp_path / "kept.xva", 0)
    r = cli("image", "get", "kept.xva", str(tmp_path / "kept.xva"))
    assert r.code != 0 and "already exists" in r.err
    # Only the kept images remain: the one-off uploads and outputs were deleted.
    names = sorted(i["name"] for i in json.loads(cli("image", "list", "--json").out))
    assert names == ["base.qcow2", "kept.xva"]
    r = cli("image", "info", "@missing")
    assert r.code == 6 and "no image named 'missing'" in r.err, r.err
    r = cli("image", "info", str(tmp_path / "nothing.raw"))
    assert r.code == 2 and "no such file" in r.err

    # Templates: import a local file on the server's host, list, remove.
    r = cli("template", "import", "tiny", str(qcow2), "--quiet")
    assert r.code == 0 and "imported template tiny on local" in r.out, r.out + r.err
    deadline = time.monotonic() + 30
    while "tiny" not in cli("template", "list").out:
        assert time.monotonic() < deadline, "the imported template never showed in the list"
        time.sleep(0.5)
    r = cli("template", "remove", "tiny")
    assert r.code == 0 and "removed template tiny" in r.out, r.err
    r = cli("template", "remove", "tiny")
    assert r.code == 6 and "no template named 'tiny'" in r.err, r.err

    # Hosts: only an admin registers or forgets one; facts come from the hypervisor.
    r = cli("host", "info", "local", "--json")
    assert r.code == 0 and json.loads(r.out)["driver"] == "libvirt", r.err
    r = cli("host", "add", "second", "qemu:///system")
    assert r.code == 2 and "otto is an operator; this needs admin" in r.err, r.err
    _cli_login(capsys, url, "ada", tmp_path)
    r = cli("host", "add", "second", "qemu:///system")
    assert r.code == 0 and "added host second: qemu:///system (ok)" in r.out, r.out + r.err
    hosts = {h["name"]: h for h in json.loads(cli("host", "list", "--json").out)}
    assert hosts["second"]["state"] == "ok"
    r = cli("host", "add", "third", "qemu+ssh://nobody@127.0.0.1:1/system")
    assert r.code != 0 and "third" not in cli("host", "list").out
    r = cli("host", "remove", "second")
    assert r.code == 0 and "second" not in cli("host", "list").out
    r = cli("host", "remove", "local")
    assert r.code == 2 and "built in" in r.err


def test_specs_travel_with_their_directory(
        capsys: pytest.CaptureFixture[str], server: Server, settings: Settings,
        storage: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    """`template validate|build --server` send the spec's directory; a failed build leaves
    nothing in the store; a context whose spec names a file outside it is refused (on the
    server it would be the server's own file)."""
    import tarfile
    monkeypatch.delenv("GLASSPANE_TOKEN", raising=False)
    url = server.url
    _cli_login(capsys, url, "otto", tmp_path)
    spec_dir = tmp_path / "blank"
    spec_dir.mkdir()
    with (spec_dir / "blank.raw").open("wb") as disk:
        disk.truncate(64 << 20)
    (spec_dir / "template.yaml").write_text(
        "name: tb-remote\nsource: {image: blank.raw}\nbuild: {ssh_timeout: 15}\n"
        "outputs: [{format: raw}]\n")
    r = run_cli(capsys, "--server", url, "template", "validate",
                str(spec_dir / "template.yaml"))
    assert r.code == 0 and "template tb-remote from" in r.out and "tb-remote.raw" in r.out, \
        r.err
    r = run_cli(capsys, "--server", url, "template", "build", str(spec_dir / "template.yaml"),
                "--quiet")
    assert r.code != 0 and "build step boot: the build VM did not become reachable" in r.err, \
        r.out + r.err
    stored = json.loads(run_cli(capsys, "--server", url, "image", "list", "--json").out)
    assert stored == []  # neither the context nor any output is left

    hostile = tmp_path / "hostile"
    hostile.mkdir()
    (hostile / "template.yaml").write_text(
        "name: tb-steal\nsource: {image: /etc/hostname}\noutputs: [{format: raw}]\n")
    (hostile / "app.yaml").write_text(
        "name: steal\nservices: {web: {image: x, archive: /etc/hostname}}\n")
    # A file the server lacks: the same answer, so that no spec learns what the server holds.
    (hostile / "probe.yaml").write_text(
        "name: tb-probe\nsource: {image: /etc/no-such-file}\noutputs: [{format: raw}]\n")
    with tarfile.open(tmp_path / "hostile.tar", "w") as tar:
        for name in ("template.yaml", "app.yaml", "probe.yaml"):
            tar.add(hostile / name, arcname=name)
    with httpx.Client(base_url=url, timeout=60) as client:
        client.headers.update(login(client, "otto"))
        assert client.put("/api/v1/images/hostile.tar",
                          content=(tmp_path / "hostile.tar").read_bytes()).status_code == 201
        r2 = client.post("/api/v1/templates/validate", json={"context": "hostile.tar"})
        assert r2.status_code == 400 and "outside the context" in r2.json()["detail"], r2.text
        r3 = client.post("/api/v1/templates/validate",
                         json={"context": "hostile.tar", "spec": "probe.yaml"})
        assert r3.status_code == 400, r3.text
        assert r3.json()["detail"].replace("no-such-file", "hostname").replace(
            "probe.yaml", "template.yaml") == r2.json()["detail"], (r2.text, r3.text)
        r2 = client.post("/api/v1/apps/validate", json={"context": "hostile.tar"})
        assert r2.status_code == 400 and "outside the context" in r2.json()["detail"], r2.text
        task = client.post("/api/v1/templates/build", json={"context": "hostile.tar"}).json()
        done = wait_task(client, task)
        assert done["state"] == "failed" and "outside the context" in done["error"], done
