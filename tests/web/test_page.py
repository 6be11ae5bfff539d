"""The page in real Chromium against a real served API whose inventory is written straight
into its database (no VM, no sync: seconds, not minutes), its live events published as the
sync would publish them: the tree, the store patched from events, the keyboard, the URL,
the forms' server-side errors, roles, themes. Screenshots are kept in test-artifacts/."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from sqlalchemy import insert, select, update

from glasspane.inventory.db import Database
from glasspane.inventory.events import publish
from glasspane.inventory.models import Container, Host, Template, Vm, sort_key
from tests.api.conftest import PASSWORDS, ROLES, Server, serve
from tests.hypervisors.conftest import isolate, release

pytestmark = pytest.mark.integration
CHROMIUM = "/usr/bin/chromium"
STATIC = Path(__file__).resolve().parents[2] / "src" / "glasspane" / "web" / "static"
ARTIFACTS = Path(os.environ.get("GLASSPANE_ARTIFACTS",
                                Path(__file__).resolve().parents[2] / "test-artifacts"))
HOSTS = ("alpha", "beta")
# What asks a host itself: these hosts are rows in the database, no hypervisor answers.
REACHES_HOST = re.compile(r"/(facts|console|logs)(\?|$)")
VMS_PER_HOST = 3


@dataclass
class Served:
    server: Server
    database: Database

    def event(self, kind: str, object_type: str, name: str, **data: object) -> None:
        """An event as the sync publishes it, after the row changed as the sync changes it."""
        with self.database.session() as session:
            if kind == "vm.state":
                host, vm = name.split("/")
                host_id = session.scalar(select(Host.id).where(Host.name == host))
                session.execute(update(Vm).where(Vm.host_id == host_id, Vm.name == vm)
                                .values(power_state=data["power_state"]))
            publish(session, kind, object_type, name, **data)


def populate(database: Database) -> None:
    with database.session() as session:
        session.execute(insert(Host), [{"name": h, "uri": f"qemu+ssh://{h}/system",
                                        "driver": "libvirt", "state": "ok", "info": {}}
                                       for h in HOSTS])
        ids = {name: id_ for name, id_ in session.execute(select(Host.name, Host.id))}
        session.execute(insert(Template), [{"host_id": ids["alpha"], "name": "deb",
                                            "virtual_size": 1 << 30, "allocation": 1 << 20}])
        session.execute(insert(Vm), [
            {"host_id": ids[h], "name": f"{h}-vm{v}", "sort_key": sort_key(h, f"{h}-vm{v}"),
             "uuid": f"{h}-{v}", "power_state": "running", "addresses": [f"10.0.{i}.{v}"],
             "labels": {"tier": "front"}} for i, h in enumerate(HOSTS)
            for v in range(1, VMS_PER_HOST + 1)])
        vm_id = session.scalar(select(Vm.id).where(Vm.name == "alpha-vm1"))
        session.execute(insert(Container), [
            {"vm_id": vm_id, "engine_id": f"e{c}", "name": f"app-{c}",
             "sort_key": sort_key("alpha", "alpha-vm1", f"app-{c}"), "image": "web:1",
             "state": "running", "status": "Up", "ports": [], "created": ""}
            for c in (1, 2)])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    if not (STATIC / "vendor" / "preact.js").exists():
        pytest.fail("the page's components are missing: `make setup` (scripts/vendor-web) "
                    "fetches them")
    from glasspane.api.app import create_app
    from glasspane.inventory.users import add_user
    from glasspane.settings import Settings
    base = tmp_path_factory.mktemp("page")
    with pytest.MonkeyPatch.context() as monkeypatch:
        runtime = isolate(monkeypatch, base)
        settings = Settings.load()
        database = Database.open(settings, f"sqlite:///{base / 'inventory.db'}")
        with database.session() as session:
            for name, role in ROLES.items():
                add_user(session, name, PASSWORDS[name], role)
        populate(database)
        server = serve(create_app(settings, database, background=False))
        try:
            yield Served(server, database)
        finally:
            server.stop()
            database.close()
            release(runtime)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs Debian's chromium")
    with sync_playwright() as playwright:
        # --no-sandbox: Chromium's sandbox refuses to run as root, as CI does.
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()


def open_page(browser: Browser, served: Served, name: str, path: str = "/",
              scheme: str = "light") -> tuple[Page, list[str]]:
    page = browser.new_page(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    said: list[str] = []
    page.on("console", lambda m: said.append(m.text))
    page.goto(served.server.url + path)
    try:
        page.fill("input[name=name]", name)
        page.fill("input[name=password]", PASSWORDS[name])
        page.click("#login-form button[type=submit]")
        expect(page.locator("#whoami")).to_have_text(f"{name} ({ROLES[name]})")
        expect(page.locator("#live")).to_have_text("live", timeout=15_000)
        expect(page.locator(row("host:alpha"))).to_be_visible()
    except Exception as exc:
        raise AssertionError(f"{exc}\nconsole: {said}\nerrors: {errors}\n"
                             f"page: {page.content()[-1500:]}") from exc
    # Refusals from here on (before the login, the page's first reads are 401s).
    page.on("response", lambda r: errors.append(f"{r.status} {r.url}") if r.status >= 400
            and not REACHES_HOST.search(r.url) else None)
    return page, errors


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"page-{name}.png"), full_page=True)


def row(key: str) -> str:
    return f'#tree [data-key="{key}"]'


def selected(page: Page, key: str) -> None:
    expect(page.locator(row(key))).to_have_attribute("aria-selected", "true")


def focused_key(page: Page) -> str | None:
    return page.evaluate("document.activeElement && document.activeElement.dataset.key")


def expect_focus(page: Page, key: str) -> None:
    try:
        page.wait_for_function("(key) => document.activeElement?.dataset.key === key", arg=key,
                               timeout=5_000)
    except Exception as exc:
        raise AssertionError(f"the focus is on {focused_key(page)!r}, not {key!r}") from exc


def test_a_live_event_changes_the_badge_and_keeps_selection_and_expansion(
        served: Served, browser: Browser) -> None:
    page, errors = open_page(browser, served, "ada")
    page.click(row("host:alpha"))
    page.click(row("vm:alpha/alpha-vm1"))
    expect(page.locator("#details h1")).to_have_text("VM alpha-vm1")
    expect(page.locator(row("container:alpha/alpha-vm1/app-1") + " .badge")).to_have_text(
        "running")
    expect(page.locator("#details button[data-action=start]")).to_be_disabled()
    expect(page.locator("#details button[data-action=shutdown]")).to_be_enabled()
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))

    served.event("vm.state", "vm", "alpha/alpha-vm1", power_state="halted", addresses=[])
    expect(page.locator(row("vm:alpha/alpha-vm1") + " .badge")).to_have_text("halted")
    selected(page, "vm:alpha/alpha-vm1")
    expect(page.locator(row("host:alpha"))).to_have_attribute("aria-expanded", "true")
    expect(page.locator(row("vm:alpha/alpha-vm1"))).to_have_attribute("aria-expanded", "true")
    # The allowed actions follow the new state: the selection alone is asked for again.
    expect(page.locator("#details button[data-action=start]")).to_be_enabled()
    expect(page.locator("#details button[data-action=shutdown]")).to_be_disabled()
    assert not [u for u in requests if "/vms?" in u or "/hosts?" in u], requests

    served.event("container.state", "container", "alpha/alpha-vm1/app-2", state="exited")
    expect(page.locator(row("container:alpha/alpha-vm1/app-2") + " .badge")).to_have_text(
        "exited")
    served.event("vm.added", "vm", "alpha/alpha-vm15", power_state="running", addresses=[])
    expect(page.locator(row("host:alpha") + " .label")).to_have_text("alpha (4)")
    keys = page.locator('#tree [data-kind="vm"]').evaluate_all(
        "(rows) => rows.map((r) => r.dataset.key)")
    assert keys == ["vm:alpha/alpha-vm1", "vm:alpha/alpha-vm15", "vm:alpha/alpha-vm2",
                    "vm:alpha/alpha-vm3"], keys
    served.event("vm.removed", "vm", "alpha/alpha-vm15")
    expect(page.locator(row("vm:alpha/alpha-vm15"))).to_have_count(0)
    selected(page, "vm:alpha/alpha-vm1")
    shot(page, "live-event")
    served.event("vm.state", "vm", "alpha/alpha-vm1", power_state="running", addresses=[])
    assert not errors, errors
    page.close()


def test_the_same_with_the_keyboard_alone(served: Served, browser: Browser) -> None:
    page, errors = open_page(browser, served, "otto")
    for _ in range(20):  # Tab through the header to the tree's one tabbable row
        if focused_key(page):
            break
        page.keyboard.press("Tab")
    expect_focus(page, "host:alpha")
    page.keyboard.press("b")  # type-ahead
    expect_focus(page, "host:beta")
    page.keyboard.press("ArrowRight")
    expect(page.locator(row("host:beta"))).to_have_attribute("aria-expanded", "true")
    expect(page.locator(row("vm:beta/beta-vm2"))).to_be_visible()
    page.keyboard.press("ArrowRight")  # into the opened host
    page.keyboard.press("ArrowDown")
    expect_focus(page, "vm:beta/beta-vm2")
    # Expansion is not selection: nothing is selected yet.
    expect(page.locator('#tree [aria-selected="true"]')).to_have_count(0)
    page.keyboard.press("Enter")
    selected(page, "vm:beta/beta-vm2")
    expect(page.locator("#details h1")).to_have_text("VM beta-vm2")

    served.event("vm.state", "vm", "beta/beta-vm2", power_state="paused", addresses=[])
    expect(page.locator(row("vm:beta/beta-vm2") + " .badge")).to_have_text("paused")
    expect(page.locator("#details button[data-action=resume]")).to_be_enabled()
    selected(page, "vm:beta/beta-vm2")
    expect(page.locator(row("host:beta"))).to_have_attribute("aria-expanded", "true")
    expect_focus(page, "vm:beta/beta-vm2")  # the focus stayed through the update

    page.keyboard.press("ArrowLeft")  # a VM without containers: to its host
    expect_focus(page, "host:beta")
    page.keyboard.press("ArrowLeft")  # closes the host; the selection stays
    expect(page.locator(row("host:beta"))).to_have_attribute("aria-expanded", "false")
    expect(page.locator("#details h1")).to_have_text("VM beta-vm2")
    page.keyboard.press("End")
    expect_focus(page, "host:local")
    page.keyboard.press("Home")
    expect_focus(page, "host:alpha")
    served.event("vm.state", "vm", "beta/beta-vm2", power_state="running", addresses=[])
    assert not errors, errors
    page.close()


def test_reload_keeps_the_place_and_back_returns_to_the_previous_selection(
        served: Served, browser: Browser) -> None:
    page, errors = open_page(browser, served, "ada")
    page.click(row("host:beta"))
    page.click(row("vm:beta/beta-vm1"))
    page.click(row("vm:beta/beta-vm3"))
    page.click("#details [role=tab][data-tab=containers]")
    expect(page.locator("#details [role=tabpanel]")).to_contain_text("No containers.")
    page.reload()
    expect(page.locator("#details h1")).to_have_text("VM beta-vm3")
    selected(page, "vm:beta/beta-vm3")
    expect(page.locator("#details [role=tab][data-tab=containers]")).to_have_attribute(
        "aria-selected", "true")
    page.go_back()
    expect(page.locator("#details h1")).to_have_text("VM beta-vm1")
    selected(page, "vm:beta/beta-vm1")
    page.go_forward()
    expect(page.locator("#details h1")).to_have_text("VM beta-vm3")
    # A link to a VM, shared: another browser opens on it, its host opened in the tree.
    link = page.url
    other, more = open_page(browser, served, "vera", link.removeprefix(served.server.url))
    expect(other.locator("#details h1")).to_have_text("VM beta-vm3")
    selected(other, "vm:beta/beta-vm3")
    # The filter is in the URL too.
    other.fill("#filter", "vm2")
    expect(other.locator('#tree [data-kind="vm"]')).to_have_count(2)
    other.reload()
    expect(other.locator('#tree [data-kind="vm"]')).to_have_count(2)
    expect(other.locator("#filter")).to_have_value("vm2")
    assert not errors + more, errors + more
    page.close()
    other.close()


def test_a_form_shows_the_servers_validation_error_beside_its_field(
        served: Served, browser: Browser) -> None:
    page, errors = open_page(browser, served, "otto")
    posted: list[str] = []
    page.on("request", lambda r: posted.append(r.url) if r.method == "POST" else None)
    page.click("#new-vm-button")
    form = page.locator("#new-vm-form")
    form.locator("input[name=name]").fill("Not A Name")
    page.click("#create-vm")
    # The browser's own check first: beside the field, and nothing sent.
    expect(form.locator('[data-error-for="name"]')).not_to_be_empty()
    expect(form.locator("input[name=name]")).to_have_attribute("aria-invalid", "true")
    assert not posted
    form.locator("input[name=name]").fill("page-vm")
    # A value only the server refuses (the browser's limit taken away, as an older page or
    # a hand-made request would): its message beside its field, the dialog still open.
    cpus = form.locator("input[name=cpus]")
    cpus.evaluate("(input) => input.removeAttribute('max')")
    cpus.fill("500")
    page.click("#create-vm")
    error = form.locator('[data-error-for="cpus"]')
    expect(error).to_contain_text("less than or equal to 64")
    expect(cpus).to_have_attribute("aria-invalid", "true")
    expect(form.locator('[data-error-for="name"]')).to_be_empty()
    assert len(posted) == 1 and posted[0].endswith("/api/v1/vms"), posted
    expect(page.locator("dialog#new-vm")).to_have_attribute("open", "")
    shot(page, "form-server-error")
    page.keyboard.press("Escape")
    expect(page.locator("dialog#new-vm")).to_have_count(0)
    expect(page.locator("#tasks li")).to_have_count(0)  # nothing was queued
    assert not [e for e in errors if "/api/v1/vms" not in e], errors
    page.close()


def test_a_viewer_sees_no_action_enabled(served: Served, browser: Browser) -> None:
    page, errors = open_page(browser, served, "vera")
    page.click(row("host:alpha"))
    expect(page.locator("#details button[data-action='remove host']")).to_be_disabled()
    page.click(row("vm:alpha/alpha-vm1"))
    expect(page.locator("#details h1")).to_have_text("VM alpha-vm1")
    buttons = page.locator("#details .actions button")
    expect(buttons.first).to_be_visible()
    assert buttons.count() >= 10
    for index in range(buttons.count()):
        expect(buttons.nth(index)).to_be_disabled()
    page.click(row("container:alpha/alpha-vm1/app-1"))
    expect(page.locator("#details h1")).to_have_text("Container app-1")
    for index in range(page.locator("#details .actions button").count()):
        expect(page.locator("#details .actions button").nth(index)).to_be_disabled()
    for button in ("#new-vm-button", "#add-host-button", '#views [data-view="audit"]'):
        expect(page.locator(button)).to_be_disabled()
    shot(page, "viewer")
    assert not errors, errors
    page.close()



def test_a_late_reply_never_replaces_a_newer_one(served: Served, browser: Browser) -> None:
    """The filter's first reply held back until a second filter was answered: the first
    request is aborted, and what shows is the second's."""
    page, errors = open_page(browser, served, "vera")
    held = []
    failed: list[str] = []
    page.on("requestfailed", lambda r: failed.append(r.url))
    # A lambda, not held.append: Playwright inspects the handler (a builtin has no signature).
    page.route(re.compile(r".*/api/v1/vms\?q=vm1&.*"),
               lambda route: held.append(route))  # noqa: PLW0108
    with page.expect_request(re.compile(r".*/api/v1/vms\?q=vm1&.*")):
        page.fill("#filter", "vm1")
    page.fill("#filter", "vm3")
    vms = page.locator('#tree [data-kind="vm"]')
    expect(vms).to_have_count(2)
    expect(vms.first).to_have_attribute("data-key", "vm:alpha/alpha-vm3")
    assert len(held) == 1
    try:
        held[0].continue_()
    except Exception:  # the page aborted it already: nothing is left to answer
        pass
    page.unroute(re.compile(r".*/api/v1/vms\?q=vm1&.*"))
    expect(vms.first).to_have_attribute("data-key", "vm:alpha/alpha-vm3")
    expect(vms.last).to_have_attribute("data-key", "vm:beta/beta-vm3")
    assert any("q=vm1" in url for url in failed), failed
    assert not errors, errors
    page.close()

@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_every_view_in_both_themes(served: Served, browser: Browser, scheme: str) -> None:
    page, errors = open_page(browser, served, "ada", scheme=scheme)
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert (background == "rgb(246, 247, 249)") == (scheme == "light"), background
    page.click(row("host:alpha"))
    shot(page, f"{scheme}-host")
    page.click(row("vm:alpha/alpha-vm1"))
    for tab in ("overview", "hardware", "graphs", "snapshots", "containers", "tasks"):
        page.click(f"#details [role=tab][data-tab={tab}]")
        expect(page.locator("#details [role=tabpanel]")).to_have_attribute("data-panel", tab)
        shot(page, f"{scheme}-vm-{tab}")
    page.click("#details button[data-action=snapshot]")
    expect(page.locator("dialog#snapshot")).to_be_visible()
    shot(page, f"{scheme}-dialog")
    page.keyboard.press("Escape")
    page.click(row("container:alpha/alpha-vm1/app-1"))
    expect(page.locator("#details h1")).to_have_text("Container app-1")
    shot(page, f"{scheme}-container")
    page.click('#views [data-view="images"]')
    expect(page.locator("#images")).to_be_visible()
    shot(page, f"{scheme}-images")
    page.click('#views [data-view="audit"]')
    expect(page.locator("#audit tbody")).to_contain_text("user ada")
    shot(page, f"{scheme}-audit")
    # The switch overrides the system's choice, and is kept.
    for _ in range(2 if scheme == "light" else 1):  # auto, light, dark
        page.click("#theme")
    flipped = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert flipped != background
    page.reload()
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == flipped
    assert not errors, errors
    page.close()


def test_the_page_asks_in_its_own_forms_and_loads_nothing_from_elsewhere() -> None:
    """No prompt(), confirm() or alert(): every question is a form in a <dialog>. The
    components are imported from vendor/ by relative paths (no import map: it would be an
    inline script), and vendor/ is made by set-up, not kept in git."""
    sources = {p.relative_to(STATIC).as_posix(): p.read_text()
               for p in STATIC.rglob("*.js") if "vendor" not in p.parts}
    assert "app.js" in sources and "tree.js" in sources
    for name, text in sources.items():
        assert not re.search(r"\b(prompt|confirm|alert)\(", text), name
        assert not re.search(r"\bfrom\s*\"(?!\.)", text), name  # bare module names
        assert "innerHTML" not in text and "dangerouslySetInnerHTML" not in text, name
    ignored = (STATIC.parents[3] / ".gitignore").read_text().split()
    assert "/src/glasspane/web/static/vendor/" in ignored
