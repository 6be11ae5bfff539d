"""The page in real Chromium (Debian's, driven by Playwright; no browser is downloaded) against
a real `glasspane serve` with a real VM running a real container: log in, see the tree, stop
the container and watch its badge change live, create a VM from the form and watch its task
finish, and a viewer whose buttons are disabled and whose API calls are refused.
Screenshots are kept in test-artifacts/ (or $GLASSPANE_ARTIFACTS)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from glasspane.containers.sample_image import write_image_tarball
from glasspane.settings import Settings
from tests.api.conftest import Server, serve
from tests.hypervisors.conftest import guest_world

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("GLASSPANE_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))
PASSWORDS = {"ada": "admin-password", "vera": "viewer-password"}
VMS = ("pane-1", "pane-2")


@dataclass
class Pane:
    server: Server
    settings: Settings


@pytest.fixture(scope="module")
def pane(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pane]:
    from glasspane.api.app import create_app
    from glasspane.containers import deploy
    from glasspane.inventory.db import Database
    from glasspane.inventory.users import add_user
    from glasspane.vms.service import VmRequest, create_vm
    base = tmp_path_factory.mktemp("pane")
    with guest_world(base, "gp-web", VMS) as settings:
        create_vm(settings, VmRequest("pane-1", "deb"))
        image = write_image_tarball(base / "web.tar", "localhost/gp-web:1", "pane\n")
        deploy.load_image(settings, "local", "pane-1", image)
        deploy.run(settings, "local", "pane-1", deploy.RunRequest("localhost/gp-web:1",
                                                                   name="web"))
        database = Database.open(settings, f"sqlite:///{base / 'inventory.db'}")
        with database.session() as session:
            add_user(session, "ada", PASSWORDS["ada"], "admin")
            add_user(session, "vera", PASSWORDS["vera"], "viewer")
        server = serve(create_app(settings, database, sync_interval=2))
        try:
            yield Pane(server, settings)
        finally:
            server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root, as CI does.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def log_in(browser: Browser, pane: Pane, name: str) -> Page:
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(pane.server.url + "/")
    page.fill("input[name=name]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("#login-form button[type=submit]")
    role = "admin" if name == "ada" else "viewer"
    expect(page.locator("#whoami")).to_have_text(f"{name} ({role})")
    expect(page.locator("#live")).to_have_text("live", timeout=15_000)
    assert not errors, errors
    return page


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def node(page: Page, key: str) -> str:
    return f'.node[data-key="{key}"]'


def test_tree_live_container_stop_and_new_vm(pane: Pane, browser: Browser) -> None:
    page = log_in(browser, pane, "ada")
    page.click(node(page, "host:local"))
    expect(page.locator(node(page, "vm:local/pane-1") + " .badge")).to_have_text(
        "running", timeout=30_000)
    page.click(node(page, "vm:local/pane-1"))
    container = node(page, "container:local/pane-1/web")
    expect(page.locator(container + " .badge")).to_have_text("running", timeout=60_000)
    page.click(container)
    expect(page.locator("#details h1")).to_have_text("Container web")
    expect(page.locator("#logs")).not_to_have_text("…", timeout=30_000)
    shot(page, "1-tree-with-container")

    page.click("#details button[data-action=stop]")
    expect(page.locator('#tasks li[data-state="succeeded"]')).to_have_count(1, timeout=60_000)
    # The badge changes from the event stream, without reloading the page.
    expect(page.locator(container + " .badge")).to_have_text("exited", timeout=30_000)
    shot(page, "2-container-stopped")

    page.click("#new-vm-button")
    page.fill("#new-vm-form input[name=name]", "pane-2")
    page.select_option("#new-vm-template", "deb")
    page.fill("#new-vm-form input[name=memory_mib]", "384")
    page.fill("#new-vm-form input[name=labels]", "app=pane, tier=front")
    page.click("#create-vm")
    task = page.locator('#tasks li:has-text("vm.create local/pane-2")')
    expect(task).to_have_count(1)
    expect(task.locator("progress")).not_to_have_attribute("value", "0", timeout=60_000)
    shot(page, "3-vm-being-created")
    expect(task).to_have_attribute("data-state", "succeeded", timeout=300_000)
    expect(page.locator(node(page, "vm:local/pane-2") + " .badge")).to_have_text(
        "running", timeout=30_000)
    page.click(node(page, "vm:local/pane-2"))
    expect(page.locator("#details")).to_contain_text("app=pane, tier=front")
    shot(page, "4-new-vm-running")
    page.close()


def test_viewer_sees_but_cannot_act(pane: Pane, browser: Browser) -> None:
    page = log_in(browser, pane, "vera")
    page.click(node(page, "host:local"))
    page.click(node(page, "vm:local/pane-1"))
    expect(page.locator("#details h1")).to_have_text("VM pane-1")
    for action in ("shutdown", "reboot", "snapshot", "destroy"):
        expect(page.locator(f"#details button[data-action={action}]")).to_be_disabled()
    expect(page.locator("#new-vm-button")).to_be_disabled()
    shot(page, "5-viewer")
    page.close()
    with httpx.Client(base_url=pane.server.url) as client:
        token = client.post("/api/v1/auth/login",
                            json={"name": "vera", "password": PASSWORDS["vera"]}).json()["token"]
        refused = client.post("/api/v1/vms/local/pane-1/actions/reboot",
                              headers={"Authorization": f"Bearer {token}"})
        inspected = client.get("/api/v1/containers/local/pane-1/web/inspect",
                               headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403 and "needs operator" in refused.json()["detail"]
    # Environment variables are where containers get their passwords: names only, to viewers.
    env = inspected.json()["Config"]["Env"]
    assert env and all(entry.endswith("=***") for entry in env), env
    assert any(entry.startswith("PATH=") for entry in env), env


def cli_as_admin(pane: Pane, tmp_path: Path, capsys: pytest.CaptureFixture[str]
                 ) -> Callable[..., str]:
    """`glasspane --server` logged in as the admin: a command's output, asserting success."""
    from tests.cli.runner import run_cli
    password = tmp_path / "pw"
    password.write_text(PASSWORDS["ada"])
    assert run_cli(capsys, "--server", pane.server.url, "login", "ada", "--password-file",
                   str(password)).code == 0

    def cli(*args: str) -> str:
        r = run_cli(capsys, "--server", pane.server.url, *args)
        assert r.code == 0, r.err
        return r.out
    return cli


def test_the_cli_through_the_same_server(pane: Pane, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """The container reads, `container run` and `vm revert` through the server's API."""
    from tests.cli.runner import run_cli
    url = pane.server.url
    cli = cli_as_admin(pane, tmp_path, capsys)

    assert "localhost/gp-web:1" in cli("container", "images", "pane-1")
    r = run_cli(capsys, "--server", url, "container", "top", "pane-1", "web")  # stopped above
    assert r.code == 2 and "container web is not running" in r.err
    cli("container", "start", "pane-1", "web")
    assert "httpd" in cli("container", "top", "pane-1", "web")
    assert json.loads(cli("container", "stats", "pane-1", "web", "--json"))["memory_bytes"] > 0
    assert "container web2" in cli("container", "run", "pane-1", "localhost/gp-web:1",
                                   "--name", "web2", "--", "httpd", "-f", "-p", "8081",
                                   "-h", "/www")
    assert "web2" in cli("container", "list", "pane-1")
    cli("container", "remove", "--force", "pane-1", "web2")  # running: as `docker rm -f`
    # A command in the VM through the server: its output, its status, arguments kept whole.
    r = run_cli(capsys, "--server", url, "vm", "ssh", "pane-1", "--", "sh", "-c",
                "echo out; echo err >&2; exit 3")
    assert r.code == 3 and r.out.split() == ["out", "err"], r.out + r.err
    assert cli("vm", "ssh", "pane-1", "--", "printf", "%s|", "a b", "c;d $(id)") == \
        "a b|c;d $(id)|"
    r = run_cli(capsys, "--server", url, "vm", "ssh", "pane-1")
    assert r.code == 2 and "interactive session" in r.err
    cli("vm", "snapshot", "pane-1", "s1")
    assert "reverted to s1" in cli("vm", "revert", "pane-1", "s1")
    r = run_cli(capsys, "--server", url, "vm", "revert", "pane-1", "nope")
    assert r.code != 0 and "nope" in r.err


def test_images_audit_and_hosts_in_the_page(pane: Pane, browser: Browser,
                                            tmp_path: Path) -> None:
    from glasspane.images.sample import write_sample
    from tests.images.helpers import convert_to
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 4 << 20)
    qcow2 = convert_to(raw, tmp_path / "page-disk.qcow2")
    page = log_in(browser, pane, "ada")
    page.click('#views [data-view="images"]')
    page.set_input_files("#upload-file", str(qcow2))
    page.click("#upload-button")
    expect(page.locator("#upload-status")).to_contain_text("stored page-disk.qcow2 (qcow2",
                                                           timeout=30_000)
    row = page.locator('#images tr[data-image="page-disk.qcow2"]')
    expect(row).to_contain_text("qcow2")
    row.locator("button", has_text="Convert").click()
    page.fill("#convert-form input[name=output]", "page-disk.vhd")
    page.click("#convert-form button[type=submit]")
    converted = page.locator('#images tr[data-image="page-disk.vhd"]')
    expect(converted).to_contain_text("vhd", timeout=60_000)  # the task's end redraws the list
    converted.locator("button", has_text="Info").click()
    expect(page.locator("#image-info")).to_contain_text('"virtual_size": 4194304')
    shot(page, "6-image-store")

    page.click('#views [data-view="audit"]')
    expect(page.locator("#audit tbody")).to_contain_text("image.put")
    expect(page.locator("#audit tbody")).to_contain_text("image.convert")
    shot(page, "7-audit")

    page.click('#views [data-view="inventory"]')
    page.click(node(page, "host:local"))
    expect(page.locator("#details h1")).to_have_text("Host local")
    # A snapshot of this test's own: the one the CLI's test takes is not there when that
    # test fails or runs alone.
    from glasspane.vms.service import snapshot_vm
    snapshot_vm(pane.settings, "pane-1", "page-snap")
    # Ansible from the page: a playbook run on the VM as a task.
    page.click(node(page, "vm:local/pane-1"))
    expect(page.locator("#vm-disk")).to_contain_text("pane-1.qcow2", timeout=30_000)
    page.click("#details [role=tab][data-tab=snapshots]")
    expect(page.locator("#vm-snapshots")).to_contain_text("page-snap", timeout=30_000)
    page.click("#details button[data-action=configure]")
    page.fill("#configure-form textarea[name=playbook]",
              "- hosts: all\n  gather_facts: false\n  tasks:\n"
              "    - ansible.builtin.command: touch /tmp/configured-from-the-page\n")
    page.click("#configure-run")
    configured = page.locator('#tasks li:has-text("vm.configure pane-1")')
    expect(configured).to_have_attribute("data-state", "succeeded", timeout=120_000)
    shot(page, "8-configured")
    page.click(node(page, "host:local"))
    expect(page.locator("#details h1")).to_have_text("Host local")
    expect(page.locator('#host-templates tr[data-template="deb"]')).to_have_count(1)
    expect(page.locator("#details button[data-action='remove host']")).to_be_disabled()
    page.click("#add-host-button")
    page.fill("#add-host-form input[name=name]", "nowhere")
    page.fill("#add-host-form input[name=uri]", "qemu+ssh://nobody@127.0.0.1:1/system")
    page.click("#add-host-submit")
    expect(page.locator("#add-host-error")).not_to_be_empty(timeout=30_000)
    shot(page, "9-add-host-refused")
    page.close()

    viewer = log_in(browser, pane, "vera")
    expect(viewer.locator('#views [data-view="audit"]')).to_be_disabled()
    expect(viewer.locator("#add-host-button")).to_be_disabled()
    viewer.click('#views [data-view="images"]')
    expect(viewer.locator('#images tr[data-image="page-disk.vhd"]')).to_have_count(1)
    expect(viewer.locator("#upload-button")).to_be_disabled()
    expect(viewer.locator('#images tr[data-image="page-disk.vhd"] button',
                          has_text="Delete")).to_be_disabled()
    viewer.close()


APP = """\
name: shop
services:
  web:
    image: localhost/gp-web:2
    archive: images/web-2.tar
    ports: ["8092:8080"]
"""


def test_apps_image_load_and_export_through_the_server(
        pane: Pane, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """What carries files: an app with its image archive, an image archive alone, and a
    VM's export coming back as a file."""
    from tests.cli.runner import run_cli
    url = pane.server.url
    cli = cli_as_admin(pane, tmp_path, capsys)

    assert "podman" in cli("container", "engine", "pane-1")
    (tmp_path / "shop" / "images").mkdir(parents=True)
    write_image_tarball(tmp_path / "shop" / "images" / "web-2.tar", "localhost/gp-web:2",
                        "two\n")
    spec = tmp_path / "shop" / "app.yaml"
    spec.write_text(APP)
    assert "services web" in cli("app", "validate", str(spec))
    assert cli("app", "deploy", "pane-1", str(spec)).strip() == \
        "VM pane-1: service web created"
    assert "shop-web running" in cli("app", "list", "pane-1")
    assert "shop-web" in cli("app", "remove", "pane-1", "shop")

    write_image_tarball(tmp_path / "three.tar", "localhost/gp-web:3", "three\n")
    assert "localhost/gp-web:3" in cli("image", "load", "pane-1", str(tmp_path / "three.tar"))
    r = run_cli(capsys, "--server", url, "image", "load", "pane-1", "/etc/hostname")
    assert r.code == 2 and "not a container image archive" in r.err

    r = run_cli(capsys, "--server", url, "vm", "export", "pane-1", str(tmp_path / "x.qcow2"))
    assert r.code == 2 and "is running" in r.err
    cli("vm", "shutdown", "pane-2")
    out = cli("vm", "export", "pane-2", str(tmp_path / "pane-2.qcow2"), "--quiet")
    assert "exported VM pane-2" in out and "qcow2" in out
    info = json.loads(cli("image", "info", str(tmp_path / "pane-2.qcow2"), "--json"))
    assert info["format"] == "qcow2" and info["virtual_size"] > 0
    stored = json.loads(cli("image", "list", "--json"))
    assert not [i for i in stored if i["name"].startswith("cli-")]  # one-offs deleted
