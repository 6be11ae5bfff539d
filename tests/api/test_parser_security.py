"""Issue 13 through a real server: hostile files sent to the image store are parsed off the
event loop, in threads of their own, and end in a 4xx naming the stored image (never the
server's paths), while `/health` keeps answering; hostile contexts (deep or huge-numbered
YAML, more bytes or members than the server's caps) are a 4xx and leave nothing behind."""

from __future__ import annotations

import dataclasses
import io
import tarfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from glasspane.api.app import create_app
from glasspane.inventory.db import Database
from glasspane.settings import Settings
from tests.api.conftest import Server, login, serve
from tests.images import hostile

pytestmark = [pytest.mark.integration, pytest.mark.timeout(180),
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]
API = "/api/v1"
VIEWERS = 6  # more than the server's parser threads (inventory.parsing.PARSERS)


@pytest.fixture
def start(settings: Settings, database: Database) -> Iterator[Callable[..., Server]]:
    running: list[Server] = []

    def start_server(**changes: int) -> Server:
        server = serve(create_app(dataclasses.replace(settings, **changes), database,
                                  background=False))
        running.append(server)
        return server
    yield start_server
    for server in running:
        server.stop()


@contextmanager
def client(server: Server, user: str, timeout: float = 60) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=timeout) as made:
        made.headers.update(login(made, user))
        yield made


def health_answers_while(server: Server, busy: list[threading.Thread]) -> int:
    """Ask /health until every thread in `busy` is done (and at least twice): each answer
    must come, and be 200, whatever those threads are waiting for."""
    answers = 0
    with httpx.Client(base_url=server.url, timeout=30) as anyone:
        while any(t.is_alive() for t in busy) or answers < 2:
            response = anyone.get(f"{API}/health")
            assert response.status_code == 200, response.text
            answers += 1
    for thread in busy:
        thread.join(timeout=60)
        assert not thread.is_alive()
    return answers


def viewers_ask(server: Server, path: str) -> list[httpx.Response]:
    """VIEWERS viewers GET `path` at once while /health is asked; their answers.  They share
    one login: six at once of one name would be a login storm, refused as such."""
    with client(server, "vera") as vera:
        token = vera.headers["authorization"]
    answers: list[httpx.Response] = []

    def ask() -> None:
        with httpx.Client(base_url=server.url, timeout=120,
                          headers={"Authorization": token}) as viewer:
            answers.append(viewer.get(path))
    viewers = [threading.Thread(target=ask) for _ in range(VIEWERS)]
    for thread in viewers:
        thread.start()
    health_answers_while(server, viewers)
    return answers


def test_hostile_ova_facts_are_a_4xx_and_health_answers(start: Callable[..., Server],
                                                        settings: Settings,
                                                        tmp_path: Path) -> None:
    server = start()
    ova = hostile.huge_units_ova(tmp_path / "x.ova").read_bytes()
    with client(server, "otto") as otto:
        r = otto.put(f"{API}/images/x.ova", content=ova)
        assert r.status_code == 201 and r.json()["kind"] == "ova", r.text
    answers = viewers_ask(server, f"{API}/images/x.ova")
    assert len(answers) == VIEWERS
    for response in answers:
        assert response.status_code == 422, response.text
        detail = response.json()["detail"]
        assert detail.startswith("x.ova: OVF memory item: allocation units "
                                 "'byte * 2^4000000000' have an exponent beyond 60"), detail
        assert str(settings.data_dir) not in detail and "/" not in detail.split(":")[0]


def test_hostile_tars_in_the_store(start: Callable[..., Server], settings: Settings,
                                   tmp_path: Path) -> None:
    """A pax size of -1536 sends a tar reader from the member back onto the pax header, and
    from there forward to the member again: the old server stored such a file as an OVA and
    its facts pinned a thread forever.  Now the upload's kind is read with the bounded reader
    (off the event loop) and a file it cannot read is a plain file."""
    server = start()
    evil = hostile.pax_size_tar(tmp_path / "evil.ova", "-1536").read_bytes()
    with client(server, "otto") as otto:
        r = otto.put(f"{API}/images/evil.ova", content=evil)
        assert r.status_code == 201, r.text
    answers = viewers_ask(server, f"{API}/images/evil.ova")
    assert len(answers) == VIEWERS
    for response in answers:
        assert response.status_code == 200, response.text
        assert response.json()["kind"] == "file" and "info" not in response.json()

    # Placed by hand (no description yet): described when listed, and asked for.
    images = settings.data_dir / "images"
    (images / "hand.ova").write_bytes(evil)
    hostile.huge_units_ova(images / "huge.ova")
    with client(server, "vera") as vera:
        listed = {i["name"]: i["kind"] for i in vera.get(f"{API}/images").json()}
        assert listed == {"evil.ova": "file", "hand.ova": "file", "huge.ova": "ova"}
        r = vera.get(f"{API}/images/huge.ova")
        assert r.status_code == 422 and "exponent beyond 60" in r.json()["detail"], r.text
        assert str(images) not in r.text
        assert vera.get(f"{API}/health").status_code == 200


def _context(path: Path, files: dict[str, bytes]) -> bytes:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.read_bytes()


DEEP = b"name: " + b"[" * 20000 + b"]" * 20000 + b"\n"
HUGE_INT = b"name: web\nsource: {image: disk.raw}\nbuild: {ssh_timeout: " + b"9" * 5000 + b"}\n"
HUGE_HEX = b"name: 0x" + b"f" * 500_000 + b"\nservices: {}\n"


@pytest.mark.parametrize(("call", "spec", "needle"), [
    ("templates", DEEP, "line 1: lists and mappings nested more than 64 deep"),
    ("templates", HUGE_INT, "line 3: a number of 5000 characters (at most 40)"),
    ("apps", DEEP, "line 1: lists and mappings nested more than 64 deep"),
    ("apps", HUGE_HEX, "line 1: a number of 500002 characters (at most 40)"),
])
def test_hostile_yaml_in_a_context_is_a_4xx(start: Callable[..., Server], settings: Settings,
                                            tmp_path: Path, call: str, spec: bytes,
                                            needle: str) -> None:
    server = start()
    name = "template.yaml" if call == "templates" else "app.yaml"
    body = _context(tmp_path / "ctx.tar", {name: spec})
    with client(server, "otto") as otto:
        assert otto.put(f"{API}/images/ctx.tar", content=body).status_code == 201
    with client(server, "vera") as vera:
        r = vera.post(f"{API}/{call}/validate", json={"context": "ctx.tar", "spec": name})
        assert r.status_code == 400, r.text
        detail = r.json()["detail"]
        assert detail.startswith(f"ctx.tar:{name} ") and needle in detail, detail
        assert str(settings.data_dir) not in detail
        assert vera.get(f"{API}/health").status_code == 200
    assert not [p for p in (settings.data_dir / "images").iterdir()
                if p.name.startswith(".staging")]


def test_contexts_over_the_servers_caps(start: Callable[..., Server], settings: Settings,
                                        tmp_path: Path) -> None:
    server = start(context_limit=1 << 20, context_members=20)
    spec = b"name: web\nsource: {image: disk.raw}\noutputs: [{format: raw}]\n"
    big = _context(tmp_path / "big.tar", {"template.yaml": spec,
                                          "disk.raw": b"\0" * (1 << 20)})
    many = _context(tmp_path / "many.tar", {"template.yaml": spec,
                                            **{f"files/{i}": b"x" for i in range(25)}})
    fits = _context(tmp_path / "fits.tar", {"template.yaml": spec,
                                            "disk.raw": b"\0" * (512 << 10)})
    with client(server, "otto") as otto:
        for name, body in (("big.tar", big), ("many.tar", many), ("fits.tar", fits)):
            assert otto.put(f"{API}/images/{name}", content=body).status_code == 201
        r = otto.post(f"{API}/templates/validate", json={"context": "big.tar"})
        assert r.status_code == 422, r.text
        assert r.json()["detail"].startswith("context big.tar: over 1048576 bytes unpacked "
                                             "(at member 'disk.raw')"), r.text
        r = otto.post(f"{API}/templates/validate", json={"context": "many.tar"})
        assert r.status_code == 422 and "context many.tar: over 20 members" in r.text, r.text
        r = otto.post(f"{API}/templates/validate", json={"context": "fits.tar"})
        assert r.status_code == 200 and r.json()["name"] == "web", r.text
    assert not [p for p in (settings.data_dir / "images").iterdir()
                if p.name.startswith(".staging")]


def test_parses_never_run_on_the_event_loop(start: Callable[..., Server], settings: Settings,
                                            tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                            ) -> None:
    """An upload's kind, a listing's descriptions and an image's facts are worked out in
    worker threads: the parses are watched for a running event loop in their thread (a tar of
    200,000 members stalled /health for seconds when its kind was read on the loop)."""
    import asyncio

    from glasspane.images import inspect
    from glasspane.inventory import store
    on_loop: list[tuple[str, bool]] = []

    def watched(name: str, parse: Callable[..., object]) -> Callable[..., object]:
        def run(*args: object) -> object:
            try:
                asyncio.get_running_loop()
                on_loop.append((name, True))
            except RuntimeError:
                on_loop.append((name, False))
            return parse(*args)
        return run
    monkeypatch.setattr(store, "_kind", watched("kind", store._kind))
    monkeypatch.setattr(inspect, "image_info", watched("info", inspect.image_info))
    server = start()
    ova = hostile.huge_units_ova(tmp_path / "x.ova").read_bytes()
    with client(server, "otto") as otto:
        assert otto.put(f"{API}/images/x.ova", content=ova).status_code == 201
        assert on_loop == [("kind", False)]
        (settings.data_dir / "images" / "hand.ova").write_bytes(ova)
        assert len(otto.get(f"{API}/images").json()) == 2
        assert otto.get(f"{API}/images/x.ova").status_code == 422
    assert on_loop == [("kind", False), ("kind", False), ("info", False)]
