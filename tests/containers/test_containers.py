"""Containers in real VMs with real Podman, reached only through glasspane's SSH key: an image
built in the test is loaded from a tarball, run with a published port and reached from this
machine; managed through its life; an app of two containers deployed and updated; and every
fault the issue names produces a clear error per VM, never a hang."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from tests.cli.runner import run_cli
from tests.containers.conftest import Guests

from glasspane.containers.sample_image import write_image_tarball

pytestmark = pytest.mark.integration


def http_get(url: str, timeout: float = 60) -> str:
    """The body at `url`, waiting for a just-started server."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                return str(response.read().decode())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=5)
    except (urllib.error.URLError, ConnectionError):
        return True
    return False


def containers(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, object]]:
    r = run_cli(capsys, "container", "list", "--all", "--json", *args)
    assert r.code == 0, r.err
    return {f"{c['vm']}/{c['name']}": c for c in json.loads(r.out)["containers"]}


@pytest.fixture(scope="module")
def web_image(guests: Guests) -> Path:
    return write_image_tarball(guests.base / "web-1.tar", "localhost/gp-web:1",
                               "hello from ct-a\n")


def test_engine_is_found_and_socket_started(capsys: pytest.CaptureFixture[str],
                                            guests: Guests) -> None:
    r = run_cli(capsys, "container", "engine", "ct-a", "--json")
    assert r.code == 0, r.err
    info = json.loads(r.out)
    assert info["kind"] == "podman" and info["api_version"] == "1.41"
    assert info["socket"] == "/run/podman/podman.sock" and info["sudo"] is True


def test_load_run_reach_and_manage(capsys: pytest.CaptureFixture[str], guests: Guests,
                                   web_image: Path) -> None:
    r = run_cli(capsys, "image", "load", "ct-a", str(web_image))
    assert r.code == 0 and "loaded localhost/gp-web:1" in r.out, r.err
    r = run_cli(capsys, "container", "run", "ct-a", "localhost/gp-web:1", "--name", "web",
                "-p", "8080:8080", "-e", "GREETING=hi", "--restart", "unless-stopped")
    assert r.code == 0 and "container web" in r.out and "running" in r.out, r.err
    url = f"http://{guests.addresses['ct-a']}:8080/"
    assert http_get(url) == "hello from ct-a\n"

    row = containers(capsys, "ct-a")["ct-a/web"]
    assert row["state"] == "running" and row["image"] == "localhost/gp-web:1"
    assert row["ports"] == ["0.0.0.0:8080->8080/tcp"] and row["host"] == "local"
    inspected = json.loads(run_cli(capsys, "container", "inspect", "ct-a", "web").out)
    assert "GREETING=hi" in inspected["Config"]["Env"]
    assert inspected["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"

    r = run_cli(capsys, "container", "logs", "ct-a", "web")  # httpd -v logs each request
    assert r.code == 0 and "response:200" in r.out + r.err
    r = run_cli(capsys, "container", "top", "ct-a", "web")
    assert r.code == 0 and "httpd -f" in r.out
    r = run_cli(capsys, "container", "stats", "ct-a", "web", "--json")
    assert r.code == 0 and json.loads(r.out)["memory_bytes"] > 0

    assert "exited" in run_cli(capsys, "container", "stop", "ct-a", "web").out
    assert refused(url)
    assert "running" in run_cli(capsys, "container", "start", "ct-a", "web").out
    assert http_get(url) == "hello from ct-a\n"
    assert "paused" in run_cli(capsys, "container", "pause", "ct-a", "web").out
    assert containers(capsys, "ct-a")["ct-a/web"]["state"] == "paused"
    assert "running" in run_cli(capsys, "container", "unpause", "ct-a", "web").out
    assert "running" in run_cli(capsys, "container", "restart", "ct-a", "web").out
    assert http_get(url) == "hello from ct-a\n"

    r = run_cli(capsys, "container", "remove", "ct-a", "web")
    assert r.code == 5 and "VM ct-a" in r.err  # running: refused without --force
    assert run_cli(capsys, "container", "remove", "ct-a", "web", "--force").code == 0
    assert "ct-a/web" not in containers(capsys, "ct-a")


APP = """\
name: shop
services:
  web:
    image: localhost/gp-web:{version}
    archive: web-{version}.tar
    ports: ["8090:8080"]
    environment:
      MODE: production
    restart: unless-stopped
    depends_on: [worker]
  worker:
    image: localhost/gp-web:1
    archive: web-1.tar
    command: [sh, -c, "while true; do echo tick; sleep 2; done"]
"""


def test_app_deploy_and_update_in_place(capsys: pytest.CaptureFixture[str], guests: Guests,
                                        web_image: Path) -> None:
    write_image_tarball(guests.base / "web-2.tar", "localhost/gp-web:2", "version two\n")
    spec = guests.base / "shop.yaml"
    spec.write_text(APP.format(version=1))
    r = run_cli(capsys, "app", "deploy", "ct-b", str(spec))  # ct-b has no image yet: loaded
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["VM ct-b: service worker created",
                                  "VM ct-b: service web created"]
    url = f"http://{guests.addresses['ct-b']}:8090/"
    assert http_get(url) == "hello from ct-a\n"
    worker_id = containers(capsys, "ct-b")["ct-b/shop-worker"]["id"]

    r = run_cli(capsys, "app", "deploy", "ct-b", str(spec))
    assert r.out.splitlines() == ["VM ct-b: service worker unchanged",
                                  "VM ct-b: service web unchanged"]

    spec.write_text(APP.format(version=2))
    r = run_cli(capsys, "app", "deploy", "ct-b", str(spec))
    assert r.code == 0, r.err
    assert r.out.splitlines() == ["VM ct-b: service worker unchanged",
                                  "VM ct-b: service web recreated"]
    assert http_get(url) == "version two\n"
    rows = containers(capsys, "ct-b")
    assert rows["ct-b/shop-worker"]["id"] == worker_id  # untouched
    assert rows["ct-b/shop-web"]["image"] == "localhost/gp-web:2"
    assert "ct-b/shop-web-previous" not in rows
    r = run_cli(capsys, "container", "logs", "ct-b", "shop-worker", "--tail", "1")
    assert r.out.strip() == "tick"

    r = run_cli(capsys, "app", "list")
    assert "ct-b  shop" in r.out and "shop-web running" in r.out
    r = run_cli(capsys, "app", "remove", "ct-b", "shop")
    assert r.code == 0 and "shop-web" in r.out and "shop-worker" in r.out
    assert not [k for k in containers(capsys, "ct-b") if "shop" in k]


def test_bad_app_specs(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cases = {
        "name: shop\nservices:\n  web:\n    image: x\n    prots: []\n":
            "line 5: services.web.prots: unknown key",
        "name: shop\nservices:\n  web:\n    ports: [8080]\n": "missing required key 'image'",
        "name: shop\nservices:\n  web:\n    image: x\n    ports: ['99999:80']\n":
            "invalid port '99999:80'",
        "name: shop\nservices:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, "
        "depends_on: [a]}\n": "depends_on forms a cycle",
        "name: shop\nservices:\n  web: {image: x, depends_on: [db]}\n":
            "no service named 'db'",
        "base: &b {image: x}\nname: shop\nservices:\n  web: *b\n": "aliases",
        "name: [shop\n": "line 2",
        "name: Shop!\nservices: {web: {image: x}}\n": "invalid app name",
    }
    for text, expected in cases.items():
        spec = tmp_path / "app.yaml"
        spec.write_text(text)
        r = run_cli(capsys, "app", "validate", str(spec))
        assert r.code == 2 and expected in r.err and str(spec) in r.err, (text, r.err)


def test_bad_input_is_refused_per_vm(capsys: pytest.CaptureFixture[str], guests: Guests,
                                     tmp_path: Path) -> None:
    r = run_cli(capsys, "container", "list", "ghost")
    assert r.code == 6 and "no VM named 'ghost' on host local" in r.err
    r = run_cli(capsys, "container", "inspect", "ct-a", "nope")
    assert r.code == 6 and "host local, VM ct-a" in r.err and "nope" in r.err
    r = run_cli(capsys, "container", "run", "ct-a", "localhost/absent:1")
    assert r.code == 5 and "not in the VM and pulling it failed" in r.err
    assert "glasspane image load ct-a" in r.err
    r = run_cli(capsys, "container", "run", "ct-a", "x", "-p", "http")
    assert r.code == 2 and "invalid port 'http'" in r.err

    text = tmp_path / "notes.tar"
    text.write_bytes(b"not a tar at all" * 100)
    r = run_cli(capsys, "image", "load", "ct-a", str(text))
    assert r.code == 2 and f"{text} is not a tar archive" in r.err
    fake = tmp_path / "fake"
    fake.mkdir()
    (fake / "manifest.json").write_text('[{"Config": "c.json", "Layers": ["l.tar"]}]')
    import tarfile
    with tarfile.open(tmp_path / "fake.tar", "w") as archive:
        archive.add(fake / "manifest.json", "manifest.json")
    r = run_cli(capsys, "image", "load", "ct-a", str(tmp_path / "fake.tar"))
    assert r.code == 5 and f"loading {tmp_path / 'fake.tar'}" in r.err and "VM ct-a" in r.err


def test_vm_without_engine(capsys: pytest.CaptureFixture[str], guests: Guests) -> None:
    from glasspane.containers import sessions
    sessions.close_all()
    guests.ssh("ct-b", "sudo systemctl stop podman.socket podman.service && "
                       "sudo systemctl mask --runtime podman.socket")
    try:
        r = run_cli(capsys, "container", "list", "ct-b")
        assert r.code == 5 and "VM ct-b: no Docker or Podman engine found" in r.err
        assert "podman.socket masked" in r.err
    finally:
        guests.ssh("ct-b", "sudo systemctl unmask --runtime podman.socket && "
                           "sudo systemctl start podman.socket")
    # Not masked but stopped: started on demand.
    guests.ssh("ct-b", "sudo systemctl stop podman.socket podman.service")
    r = run_cli(capsys, "container", "engine", "ct-b", "--json")
    assert r.code == 0 and json.loads(r.out)["started"] == ["podman.socket"], r.err


def test_hung_engine_never_hides_other_vms(capsys: pytest.CaptureFixture[str],
                                           guests: Guests, web_image: Path) -> None:
    r = run_cli(capsys, "container", "run", "ct-a", "localhost/gp-web:1", "--name", "steady")
    assert r.code == 0, r.err
    # ct-b's engine accepts connections but never answers: its process is frozen (asked
    # just before, so that the socket-activated service is running).
    assert run_cli(capsys, "container", "list", "ct-b").code == 0
    guests.ssh("ct-b", "systemctl is-active podman.service && "
                       "sudo systemctl kill --kill-who=main -s SIGSTOP podman.service")
    try:
        started = time.monotonic()
        r = run_cli(capsys, "container", "list", "--timeout", "5", "--json")
        assert time.monotonic() - started < 60
        assert r.code == 5
        listing = json.loads(r.out)
        assert "steady" in [c["name"] for c in listing["containers"] if c["vm"] == "ct-a"]
        # (Other VMs on this machine, not made with this test's key, fail too: not ours.)
        [failure] = [f for f in listing["failures"] if f["vm"] in guests.addresses]
        assert failure["vm"] == "ct-b" and "did not answer" in failure["error"]
        assert "within 5 s" in failure["error"]
    finally:
        guests.ssh("ct-b", "sudo systemctl kill --kill-who=main -s SIGCONT podman.service",
                   check=False)
    assert run_cli(capsys, "container", "list", "ct-b").code == 0  # recovers on its own
    assert run_cli(capsys, "container", "remove", "ct-a", "steady", "-f").code == 0


def test_ssh_dropped_mid_call_and_refused(capsys: pytest.CaptureFixture[str], guests: Guests,
                                          monkeypatch: pytest.MonkeyPatch,
                                          tmp_path: Path) -> None:
    from glasspane.containers import service
    from glasspane.errors import GuestUnreachable
    from glasspane.guests.ssh import stop_masters
    settings = guests.settings
    r = run_cli(capsys, "container", "run", "ct-a", "localhost/gp-web:1", "--name", "ticker",
                "--", "sh", "-c", "while true; do echo tick; sleep 1; done")
    assert r.code == 0, r.err
    seen: list[bytes] = []
    failure: list[BaseException] = []

    def follow() -> None:
        try:
            for _, data in service.logs(settings, "local", "ct-a", "ticker", follow=True):
                seen.append(data)
        except BaseException as exc:
            failure.append(exc)

    reader = threading.Thread(target=follow, daemon=True)
    reader.start()
    deadline = time.monotonic() + 30
    while not seen and time.monotonic() < deadline:
        time.sleep(0.2)
    assert seen, "no log lines arrived"
    stop_masters(settings.runtime_dir)  # the SSH connection drops under the running call
    reader.join(30)
    assert not reader.is_alive(), "logs --follow hung after the connection dropped"
    assert failure and isinstance(failure[0], GuestUnreachable), failure
    assert "VM ct-a" in str(failure[0]) and "dropped" in str(failure[0])
    # The next call reconnects by itself.
    r = run_cli(capsys, "container", "remove", "ct-a", "ticker", "--force")
    assert r.code == 0, r.err

    # A key the VM does not know: refused, with what to do.
    monkeypatch.setenv("GLASSPANE_CONFIG_DIR", str(tmp_path / "other-config"))
    r = run_cli(capsys, "container", "list", "ct-a")
    assert r.code == 5 and "refused glasspane's key" in r.err and "VM ct-a" in r.err


def test_xenserver_pool_vm_gets_xscontainer_keys(capsys: pytest.CaptureFixture[str],
                                                guests: Guests, web_image: Path) -> None:
    """A VM of a XenServer pool (the loopback XAPI, its guest address the real guest's) has
    its containers written where XenCenter and Xen Orchestra look."""
    from tests.xapi.server import Xapi, start

    from glasspane.inventory.sync import sync_xscontainer_keys
    xapi = Xapi(password="pool-password")
    host = xapi.add("host", name_label="xcp1", hostname="xcp1")
    metrics = xapi.add("VM_guest_metrics", networks={"0/ip": guests.addresses["ct-a"]})
    vm = xapi.add("VM", name_label="ct-a-on-xen", power_state="Running", resident_on=host,
                  guest_metrics=metrics)
    running = start(xapi)
    password = guests.base / "xapi-password"
    password.write_text("pool-password")
    try:
        assert run_cli(capsys, "host", "add", "xcp", running.url, "--driver", "xenapi",
                       "--user", "root", "--password-file", str(password)).code == 0
        assert run_cli(capsys, "container", "run", "ct-a", "localhost/gp-web:1", "--name",
                       "xs-demo").code == 0
        assert sync_xscontainer_keys(guests.settings) == 1
        keys = xapi.objects["VM"][vm]["other_config"]
        assert keys["xscontainer-monitor"] == "True"
        assert "<names>xs-demo</names>" in keys["docker_ps"]
        assert "<status>Up</status>" in keys["docker_ps"]
        assert "Podman" in keys["docker_version"]
        assert "sizerw" not in keys["docker_ps"]  # asked without sizes: no write loop
        assert "VM.add_to_other_config" not in xapi.calls  # written whole, in one call
        assert sync_xscontainer_keys(guests.settings) == 0  # unchanged: nothing rewritten
        xapi.objects["VM"][vm]["power_state"] = "Halted"  # stopped from XenCenter
        assert sync_xscontainer_keys(guests.settings) == 1
        assert "docker_ps" not in xapi.objects["VM"][vm]["other_config"]
    finally:
        run_cli(capsys, "container", "remove", "ct-a", "xs-demo", "--force")
        run_cli(capsys, "host", "remove", "xcp")
        running.stop()


# An engine in the VM (on a unix socket, like Podman's) that answers the first request of each
# connection and closes the connection on the next one without a word: as Podman's service
# does with kept connections when it exits after 5 s without requests, if a request goes out
# just then.  Each request is noted in the log, answered or closed.
CLOSING_ENGINE = r"""
import os, socket, sys, threading
path, log = sys.argv[1], sys.argv[2]
body = b'{"Version": "0-test", "ApiVersion": "1.41", "Components": [{"Name": "Podman"}]}'
def note(line):
    with open(log, "a") as f:
        f.write(line + "\n")
def serve(conn):
    buf, answered = b"", False
    while True:
        while b"\r\n\r\n" not in buf:
            data = conn.recv(65536)
            if not data:
                conn.close()
                return
            buf += data
        head, _, buf = buf.partition(b"\r\n\r\n")
        request = head.split(b"\r\n")[0].decode()
        if answered:
            note("closed " + request)
            conn.close()
            return
        note("answered " + request)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        answered = True
server = socket.socket(socket.AF_UNIX)
server.bind(path)
server.listen(8)
with open(path + ".pid", "w") as f:
    f.write(str(os.getpid()))
while True:
    threading.Thread(target=serve, args=(server.accept()[0],), daemon=True).start()
"""


def test_a_kept_connection_closed_by_the_engine_is_replaced(guests: Guests) -> None:
    """A read whose kept connection the engine closed instead of answering is sent again on
    a new one; a change (POST) is not, and fails saying the connection broke."""
    import shlex

    from glasspane.containers.discovery import Probe
    from glasspane.containers.engine import Engine
    from glasspane.errors import EngineError
    from glasspane.guests.access import guest_target
    from glasspane.guests.ssh import SshConnection
    sock, log = "/tmp/gp-closing-engine.sock", "/tmp/gp-closing-engine.log"
    guests.ssh("ct-a", "rm", "-f", sock, log)
    guests.ssh("ct-a", f"nohup python3 -c {shlex.quote(CLOSING_ENGINE)} {sock} {log} "
                       ">/dev/null 2>&1 &")
    try:
        guests.ssh("ct-a", f"timeout 60 sh -c 'until [ -S {sock} ]; do sleep 0.2; done'")
        ssh = SshConnection(guest_target(guests.settings, "local", "ct-a"),
                            guests.settings.runtime_dir)
        engine = Engine(ssh, Probe(sock, False, "python3"))  # asks GET /version
        try:
            assert engine.json("GET", "/images/json")["Version"] == "0-test"
            with pytest.raises(EngineError, match="broke during POST /containers/x/start"):
                engine.request("POST", "/containers/x/start")
        finally:
            engine.close()
        assert guests.ssh("ct-a", "cat", log).splitlines() == [
            "answered GET /version HTTP/1.1",
            "closed GET /v1.41/images/json HTTP/1.1",      # on the kept connection
            "answered GET /v1.41/images/json HTTP/1.1",    # again, on a new one
            "closed POST /v1.41/containers/x/start HTTP/1.1"]  # once only
    finally:
        guests.ssh("ct-a", f"kill $(cat {sock}.pid); rm -f {sock} {sock}.pid {log}",
                   check=False)
