"""The image store against hostile images, through a real server (uvicorn, real tokens): a
qcow2 made by qemu-img whose backing file is the server's admin password, a differencing VHD
(made by hand: qemu-img makes none) whose parent locator points outside the store, a qcow2
inside an OVA naming a backing file, a symbolic link in the store.  The server reads a backing
file or parent only as the bare name of another stored image; every error it gives says no
byte of the target, no path on the server, no UUID of a file outside the store; and a viewer
never gets the secret.  Also: misnamed files refused unless read as raw, operators changing
only their own images, and an upload that would fill the disk refused, leaving nothing."""

from __future__ import annotations

import dataclasses
import io
import re
import select
import shutil
import socket
import tarfile
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import httpx
import pytest

from glasspane.api.app import create_app
from glasspane.inventory.db import Database
from glasspane.inventory.users import add_user
from glasspane.settings import Settings
from tests.api.conftest import Server, login, serve
from tests.hypervisors.conftest import URI, remove_pool
from tests.images.helpers import (
    convert_to,
    footer_of,
    make_child,
    ova_holding,
    qemu_overlay,
)

pytestmark = [pytest.mark.integration,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]
MIB = 1 << 20
SECRET = b"s3cret-admin-password-" + uuid.uuid4().hex.encode() + b"\n"
TERMINAL = ("succeeded", "failed", "cancelled")


@pytest.fixture(autouse=True)
def own_pools(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Template and VM storage of the test's own: autouse, so that it is set before the
    server's settings are loaded (a template import must never land in the default pool)."""
    import libvirt
    name = f"gp-imgsec-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("GLASSPANE_TEMPLATE_STORAGE", name)
    monkeypatch.setenv("GLASSPANE_VM_STORAGE", name + "-vms")
    yield
    conn = libvirt.open(URI)
    remove_pool(conn, name + "-vms")
    remove_pool(conn, name)
    conn.close()


@pytest.fixture
def secret(settings: Settings) -> Path:
    """The server's admin password, where `make demo` keeps it: CONFIG_DIR/admin-password,
    which from the store (DATA_DIR/images) is ../../config/admin-password."""
    path = settings.config_dir / "admin-password"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(SECRET)
    path.chmod(0o600)
    return path


@pytest.fixture
def server(settings: Settings, database: Database, secret: Path) -> Iterator[Server]:
    with database.session() as session:
        add_user(session, "olga", "olga-password", "operator")
    running = serve(create_app(settings, database, sync_interval=60))
    yield running
    running.stop()


def client_for(server: Server, name: str) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=60)
    if name == "olga":  # the second operator, made for these tests
        r = client.post("/api/v1/auth/login", json={"name": name, "password": "olga-password"})
        client.headers["Authorization"] = f"Bearer {r.json()['token']}"
    else:
        client.headers.update(login(client, name))
    client.base_url = httpx.URL(server.url + "/api/v1/")
    return client


@pytest.fixture
def otto(server: Server) -> Iterator[httpx.Client]:
    with closing(client_for(server, "otto")) as client:
        yield client


@pytest.fixture
def vera(server: Server) -> Iterator[httpx.Client]:
    with closing(client_for(server, "vera")) as client:
        yield client


def finished(client: httpx.Client, task: dict[str, Any], timeout: float = 120
             ) -> dict[str, Any]:
    assert "id" in task, task
    deadline = time.monotonic() + timeout
    while task["state"] not in TERMINAL:
        assert time.monotonic() < deadline, task
        time.sleep(0.1)
        task = client.get(f"/tasks/{task['id']}").json()
    return task


def put(client: httpx.Client, name: str, path: Path, replace: bool = False
        ) -> httpx.Response:
    return client.put(f"/images/{name}", content=path.read_bytes(),
                      params={"replace": "true"} if replace else None)


def assert_clean(text: str, tmp_path: Path, *uuids: bytes) -> None:
    """No byte of the secret (nor of /etc/shadow), no path on the server, no outside UUID."""
    assert SECRET.strip().decode() not in text and SECRET[:8].decode() not in text, text
    assert "root:" not in text, text
    assert str(tmp_path) not in text, text
    assert not re.search(r"(?<![\w.])/(tmp|etc|root|home|work|var|proc)\b", text), text
    for identity in uuids:
        assert str(uuid.UUID(bytes=identity)) not in text, text


def store_files(settings: Settings) -> list[str]:
    return sorted(p.name for p in (settings.data_dir / "images").iterdir())


def assert_viewer_never_sees_it(vera: httpx.Client) -> None:
    for item in vera.get("/images").json():
        body = vera.get(f"/images/{item['name']}/content").content
        assert SECRET.strip() not in body, item


@pytest.mark.parametrize("backing", ["relative", "absolute"])
def test_backing_file_outside_the_store_is_refused_everywhere(
        otto: httpx.Client, vera: httpx.Client, settings: Settings, secret: Path,
        tmp_path: Path, backing: str) -> None:
    name = "../../config/admin-password" if backing == "relative" else str(secret)
    x = qemu_overlay(tmp_path / "x.qcow2", name)
    r = put(otto, "x.qcow2", x)
    assert r.status_code == 201 and r.json()["kind"] == "qcow2", r.text

    done = finished(otto, otto.post("/images/x.qcow2/convert", json={"output": "x.raw"}).json())
    assert done["state"] == "failed", done
    assert "outside the image store" in done["error"] and "x.qcow2" in done["error"], done
    assert_clean(done["error"], tmp_path)
    for output in ("x.ova", "x.xva", "x.vhd"):
        done = finished(otto, otto.post("/images/x.qcow2/convert",
                                        json={"output": output}).json())
        assert done["state"] == "failed" and "outside the image store" in done["error"], done
    # Its facts, its check and a comparison read it too: each refuses.
    r = vera.get("/images/x.qcow2")
    assert r.status_code == 422 and "outside the image store" in r.text, r.text
    assert_clean(r.text, tmp_path)
    done = finished(otto, otto.post("/images/x.qcow2/check").json())
    assert done["result"]["ok"] is False, done
    assert "outside the image store" in done["result"]["problems"][0]
    assert_clean(str(done["result"]), tmp_path)
    secret_copy = tmp_path / "plain.raw"
    secret_copy.write_bytes(bytes(MIB))
    assert put(otto, "plain.raw", secret_copy).status_code == 201
    done = finished(otto, otto.post("/images/compare", json={"a": "x.qcow2",
                                                             "b": "plain.raw"}).json())
    assert done["state"] == "failed" and "outside the image store" in done["error"], done
    assert_clean(done["error"], tmp_path)

    assert store_files(settings) == ["plain.raw", "plain.raw.meta.json", "x.qcow2",
                                     "x.qcow2.meta.json"]
    assert_viewer_never_sees_it(vera)


def test_backing_file_naming_another_stored_image_is_followed(
        otto: httpx.Client, vera: httpx.Client, tmp_path: Path) -> None:
    base = tmp_path / "base.raw"
    base.write_bytes(bytes(range(256)) * (4 * 4096))
    assert put(otto, "base.raw", base).status_code == 201
    assert put(otto, "over.qcow2", qemu_overlay(tmp_path / "over.qcow2", "base.raw",
                                               size="4M")).status_code == 201
    info = vera.get("/images/over.qcow2").json()["info"]
    assert [p["path"] for p in info["backing_chain"]] == ["base.raw"], info
    done = finished(otto, otto.post("/images/over.qcow2/convert",
                                    json={"output": "flat.raw"}).json())
    assert done["state"] == "succeeded", done
    assert vera.get("/images/flat.raw/content").content == base.read_bytes()


def test_symbolic_link_in_the_store_is_refused(otto: httpx.Client, vera: httpx.Client,
                                               settings: Settings, secret: Path,
                                               tmp_path: Path) -> None:
    root = settings.data_dir / "images"
    root.mkdir(parents=True, exist_ok=True)
    (root / "link.raw").symlink_to(secret)  # placed by hand, on the server's disk
    assert put(otto, "x.qcow2", qemu_overlay(tmp_path / "x.qcow2", "link.raw")).status_code \
        == 201
    done = finished(otto, otto.post("/images/x.qcow2/convert", json={"output": "x.raw"}).json())
    assert done["state"] == "failed" and "symbolic link" in done["error"], done
    assert_clean(done["error"], tmp_path)
    assert vera.get("/images/x.raw").status_code == 404


def test_differencing_vhd_whose_parent_is_outside_is_refused(
        otto: httpx.Client, vera: httpx.Client, settings: Settings, tmp_path: Path) -> None:
    # A VHD outside the store (a host's disk, a secret made into one) and a child naming it,
    # with its true UUID (as a first upload's error used to give away).
    raw = tmp_path / "outside.raw"
    raw.write_bytes(SECRET.ljust(4 * MIB, b"\0"))
    outside = convert_to(raw, settings.config_dir / "outside.vhd")
    identity = footer_of(outside).uuid
    for locator in (str(outside), "../../config/outside.vhd", "/etc/shadow"):
        child = tmp_path / "child.vhd"
        make_child(outside, child, block=1, sectors=range(1), byte=0xEE, locator=locator,
                   parent_name="outside.vhd")
        r = put(otto, "child.vhd", child, replace=True)
        assert r.status_code == 201, r.text
        done = finished(otto, otto.post("/images/child.vhd/convert",
                                        json={"output": "child.raw"}).json())
        assert done["state"] == "failed", done
        assert_clean(done["error"], tmp_path, identity)
        r = vera.get("/images/child.vhd")
        assert r.status_code == 422, r.text
        assert_clean(r.text, tmp_path, identity)
    assert_viewer_never_sees_it(vera)


def test_qcow2_inside_an_ova_naming_a_backing_file_is_refused(
        otto: httpx.Client, vera: httpx.Client, tmp_path: Path) -> None:
    disk = qemu_overlay(tmp_path / "root.qcow2", "../../config/admin-password")
    ova = ova_holding(tmp_path / "x.ova", "root.qcow2", disk.read_bytes(), MIB)
    assert put(otto, "x.ova", ova).status_code == 201
    # Even with a stored image of that bare name, a disk inside an archive names nothing.
    assert put(otto, "admin-password", tmp_path / "root.qcow2").status_code == 201
    for output in ("x.raw", "x.xva"):
        done = finished(otto, otto.post("/images/x.ova/convert",
                                        json={"output": output}).json())
        assert done["state"] == "failed" and "inside an archive" in done["error"], done
        assert_clean(done["error"], tmp_path)
    assert_viewer_never_sees_it(vera)


def test_template_import_and_build_refuse_a_backing_file(
        otto: httpx.Client, settings: Settings, tmp_path: Path) -> None:
    x = qemu_overlay(tmp_path / "x.qcow2", "../../config/admin-password")
    assert put(otto, "x.qcow2", x).status_code == 201
    done = finished(otto, otto.post("/templates", json={"name": "leak", "image": "x.qcow2"})
                    .json())
    assert done["state"] == "failed" and "outside the image store" in done["error"], done
    assert_clean(done["error"], tmp_path)
    # A build context whose source image names a backing file: refused before any VM boots.
    spec = (b"name: leak\nsource: {image: disk.qcow2}\nresources: {cpus: 1, memory: 256, "
            b"disk: 1}\noutputs:\n  - {format: raw}\n")
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as tar:
        for member, data in (("template.yaml", spec), ("disk.qcow2", x.read_bytes())):
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert otto.put("/images/ctx.tar", content=context.getvalue()).status_code == 201
    done = finished(otto, otto.post("/templates/build", json={
        "context": "ctx.tar", "spec": "template.yaml", "register_template": False}).json())
    assert done["state"] == "failed" and "standalone" in done["error"], done
    assert_clean(done["error"], tmp_path)
    assert not any(name.startswith("leak") for name in store_files(settings))


def test_misnamed_image_is_refused_unless_read_as_raw(otto: httpx.Client,
                                                      vera: httpx.Client,
                                                      tmp_path: Path) -> None:
    empty = tmp_path / "empty.qcow2"
    empty.write_bytes(b"")
    junk = tmp_path / "junk.vhd"
    junk.write_bytes(b"\x17" * MIB)
    for path, fmt in ((empty, "qcow2"), (junk, "VHD")):
        name = path.name
        assert put(otto, name, path).status_code == 201
        r = vera.get(f"/images/{name}")
        assert r.status_code == 422 and f"the content is not {fmt}" in r.text, r.text
        assert name in r.text and '"from": "raw"' in r.json()["detail"]
        assert_clean(r.text, tmp_path)
        done = finished(otto, otto.post(f"/images/{name}/convert",
                                        json={"output": f"{name}.raw"}).json())
        assert done["state"] == "failed" and f"the content is not {fmt}" in done["error"]
        assert_clean(done["error"], tmp_path)
        done = finished(otto, otto.post(f"/images/{name}/check").json())
        assert done["result"]["ok"] is False and f"not {fmt}" in done["result"]["problems"][0]
        # Said to be raw, it is read as raw.
        done = finished(otto, otto.post(f"/images/{name}/convert",
                                        json={"output": f"{name}.raw", "from": "raw"}).json())
        assert done["state"] == "succeeded", done
        assert vera.get(f"/images/{name}.raw/content").content == path.read_bytes()
        done = finished(otto, otto.post(f"/images/{name}/check", json={"from": "raw"}).json())
        assert done["result"]["ok"] is True, done
        r = vera.get(f"/images/{name}", params={"from": "raw"})
        assert r.status_code == 200 and r.json()["info"]["format"] == "raw", r.text


def test_operators_change_only_their_own_images(server: Server, otto: httpx.Client,
                                                settings: Settings, tmp_path: Path) -> None:
    disk = tmp_path / "d.raw"
    disk.write_bytes(b"\1" * MIB)
    with closing(client_for(server, "olga")) as olga, closing(client_for(server, "ada")) as ada:
        r = put(olga, "hers.raw", disk)
        assert r.status_code == 201 and r.json()["created_by"] == "olga", r.text
        r = otto.delete("/images/hers.raw")
        assert r.status_code == 403 and "stored by olga" in r.text, r.text
        r = put(otto, "hers.raw", disk, replace=True)
        assert r.status_code == 403, r.text
        assert put(otto, "mine.raw", disk).status_code == 201
        r = otto.post("/images/mine.raw/convert", json={"output": "hers.raw", "replace": True})
        assert r.status_code == 403, r.text
        # Replacing one's own is fine; the record still says whose it is.
        r = put(otto, "mine.raw", disk, replace=True)
        assert r.status_code == 201 and r.json()["created_by"] == "otto", r.text
        assert olga.get("/images/hers.raw").json()["created_by"] == "olga"
        # An image of unknown origin (placed by hand on the server): admins only.
        shutil.copyfile(disk, settings.data_dir / "images" / "byhand.raw")
        assert otto.delete("/images/byhand.raw").status_code == 403
        assert ada.delete("/images/byhand.raw").status_code == 200
        assert ada.delete("/images/hers.raw").status_code == 200
        assert otto.delete("/images/mine.raw").status_code == 200
        audit = [(a["action"], a["object_name"], a["outcome"])
                 for a in ada.get("/audit").json()["items"]]
        assert ("image.delete", "hers.raw", "denied") in audit, audit


def send_chunked(url: str, path: str, token: str, total: int) -> str:
    """PUT `total` bytes without a Content-Length (chunked, as a pipe is sent), stopping
    when the server answers; its answer."""
    host, port = url.removeprefix("http://").split(":")
    chunk = b"\xab" * MIB
    with socket.create_connection((host, int(port))) as s:
        s.sendall(f"PUT {path} HTTP/1.1\r\nHost: x\r\nAuthorization: {token}\r\n"
                  "Transfer-Encoding: chunked\r\n\r\n".encode())
        sent = 0
        try:
            while sent < total and not select.select([s], [], [], 0)[0]:
                s.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
            if sent >= total:
                s.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass
        answer = b""
        s.settimeout(30)
        while b"}" not in answer:
            try:
                data = s.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not data:
                break
            answer += data
        return answer.decode(errors="replace")


def test_chunked_upload_that_would_fill_the_disk_is_refused(
        settings: Settings, database: Database, secret: Path, tmp_path: Path) -> None:
    root = settings.data_dir / "images"
    root.mkdir(parents=True, exist_ok=True)
    # A reserve that leaves room for 32 MiB: the 256 MiB upload crosses it halfway through.
    free = shutil.disk_usage(root).free
    tight = dataclasses.replace(settings, store_reserve=free - 32 * MIB)
    running = serve(create_app(tight, database, sync_interval=60))
    try:
        with httpx.Client(base_url=running.url) as client:
            token = login(client, "otto")["Authorization"]
        answer = send_chunked(running.url, "/api/v1/images/big.raw", token, 256 * MIB)
        assert answer.startswith("HTTP/1.1 507"), answer[:300]
        assert "kept free" in answer and "nothing was stored" in answer, answer
        assert_clean(answer, tmp_path)
        deadline = time.monotonic() + 10
        while store_files(settings):  # no file, no staging directory left
            assert time.monotonic() < deadline, store_files(settings)
            time.sleep(0.1)
    finally:
        running.stop()
