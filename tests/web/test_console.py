"""The Console tab in real Chromium against a real served API and real VMs: the screen (noVNC
on the VNC socket) of a VM that boots nothing connects and draws a frame that is not blank, its
buttons send Ctrl-Alt-Del and a paste as keystrokes, it reconnects when the VM is made anew and
pops out into its own window; a viewer has the tab's buttons disabled; and on a booted Debian
guest the serial console (xterm.js) shows the login prompt, takes `root` typed into it and
shows `Password:`. No Content-Security-Policy violation on the way."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import libvirt
import pytest
from playwright.sync_api import Browser, Page, expect
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from glasspane.inventory.db import Database
from glasspane.settings import Settings
from tests.api.conftest import PASSWORDS, ROLES, Server, login, serve
from tests.api.test_api import add_vm
from tests.api.test_console_guest import GUEST, guest  # noqa: F401 -- the Debian guest
from tests.api.test_consoles import DOMAIN
from tests.hypervisors.conftest import URI, isolate, release
from tests.web.test_page import STATIC, browser, shot  # noqa: F401 -- Chromium, once

pytestmark = pytest.mark.integration
# Collects what the page's CSP refused and the RFB key events noVNC sends (RFB's KeyEvent, or
# QEMU's extended one when it gives the key's scancode too) as [down, keysym], before any of
# the page's scripts run.
WATCH = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation",
  (e) => window.cspViolations.push(
    `${e.violatedDirective} ${e.blockedURI} ${e.sample} at ${e.sourceFile}:${e.lineNumber}`));
window.keysSent = [];
const send = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  const bytes = data instanceof ArrayBuffer ? new Uint8Array(data)
    : ArrayBuffer.isView(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
    : null;
  if (this.url.includes("/console/vnc") && bytes) {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    for (let at = 0; at < bytes.length;) {
      if (bytes[at] === 4) {  // KeyEvent: down, padding, keysym
        window.keysSent.push([bytes[at + 1], view.getUint32(at + 4)]);
        at += 8;
      } else if (bytes[at] === 255 && bytes[at + 1] === 0) {  // QEMU's: down, keysym, scancode
        window.keysSent.push([view.getUint16(at + 2), view.getUint32(at + 4)]);
        at += 12;
      } else break;
    }
  }
  return send.call(this, data);
};
"""
# Whether noVNC's canvas (one: a closed connection's is gone) holds a pixel that is not black.
DRAWN = """() => {
  const canvases = document.querySelectorAll("#console-screen canvas");
  const canvas = canvases[0];
  if (canvases.length !== 1 || !canvas.width) return false;
  const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i] || pixels[i + 1] || pixels[i + 2]) return true;
  }
  return false;
}"""
# Whether a row of the serial console's terminal (xterm's DOM) shows a word.
SHOWS = """(word) => [...document.querySelectorAll("#console-serial .xterm-rows > div")]
  .some((row) => row.textContent.includes(word))"""
SHIFT, RETURN = 0xffe1, 0xff0d


@dataclass
class Served:
    server: Server
    database: Database
    vm: libvirt.virDomain


def open_server(settings: Settings, database: Database) -> Server:
    from glasspane.api.app import create_app
    from glasspane.inventory.users import add_user
    with database.session() as session:
        for name, role in ROLES.items():
            add_user(session, name, PASSWORDS[name], role)
    return serve(create_app(settings, database, background=False))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A VM with a screen and a serial port that boots nothing (its firmware draws)."""
    if not (STATIC / "vendor" / "novnc" / "core" / "rfb.js").exists():
        pytest.fail("the page's components are missing: `make setup` (scripts/vendor-web)")
    base = tmp_path_factory.mktemp("console-page")
    conn = libvirt.open(URI)
    dom = conn.defineXML(DOMAIN.format(name=f"gp-webcon-{uuid.uuid4().hex[:8]}"))
    dom.create()
    with pytest.MonkeyPatch.context() as monkeypatch:
        runtime = isolate(monkeypatch, base)
        settings = Settings.load()
        database = Database.open(settings, f"sqlite:///{base / 'inventory.db'}")
        add_vm(database, dom.name(), "running")
        server = open_server(settings, database)
        try:
            yield Served(server, database, dom)
        finally:
            server.stop()
            database.close()
            release(runtime)
            if dom.isActive():
                dom.destroy()
            dom.undefine()
            conn.close()


def console_page(browser: Browser, url: str, user: str, vm: str, sub: str = "") -> Page:  # noqa: F811
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.add_init_script(WATCH)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{url}/?sel=vm:local/{vm}&tab=console")
    page.fill("input[name=name]", user)
    page.fill("input[name=password]", PASSWORDS[user])
    page.click("#login-form button[type=submit]")
    expect(page.locator("#whoami")).to_have_text(f"{user} ({ROLES[user]})")
    expect(page.locator("#details h1")).to_have_text(f"VM {vm}")
    if sub:
        page.click(f"[data-console-view={sub}]")
    page.errors = errors  # type: ignore[attr-defined]
    return page


def status(page: Page, state: str, timeout: float = 30_000) -> None:
    expect(page.locator("#console-status")).to_have_attribute("data-state", state,
                                                              timeout=timeout)


def no_violations(page: Page) -> None:
    assert page.evaluate("window.cspViolations") == []
    assert page.errors == []  # type: ignore[attr-defined]


def test_the_screen_connects_draws_types_and_reconnects(served: Served,
                                                        browser: Browser) -> None:  # noqa: F811
    page = console_page(browser, served.server.url, "otto", served.vm.name(), "screen")
    status(page, "connected")
    page.wait_for_function(DRAWN, timeout=30_000)
    shot(page, "console-screen")
    # Ctrl-Alt-Del: the three keys down, then up.
    page.click("#console-cad")
    page.wait_for_function("() => window.keysSent.length >= 6")
    assert page.evaluate("window.keysSent.slice(0, 6)") == [
        [1, 0xffe3], [1, 0xffe9], [1, 0xffff], [0, 0xffff], [0, 0xffe9], [0, 0xffe3]]
    # A paste: each character a key, Shift around the capitals, Enter for the line's end.
    page.evaluate("window.keysSent = []")
    page.fill("#console-paste", "aB\n")
    page.click("#console-paste-send")
    page.wait_for_function("() => window.keysSent.length >= 8")
    assert page.evaluate("window.keysSent") == [
        [1, ord("a")], [0, ord("a")], [1, SHIFT], [1, ord("B")], [0, ord("B")], [0, SHIFT],
        [1, RETURN], [0, RETURN]]
    # Full screen: the console's frame alone.
    page.click("#console-fullscreen")
    page.wait_for_function(
        "() => document.fullscreenElement?.classList.contains('console-frame') === true")
    page.evaluate("() => document.exitFullscreen()")
    page.wait_for_function("() => document.fullscreenElement === null")
    # The VM goes away and comes back (as a XenServer VM does when it reboots): the screen's
    # socket closes, and the page asks for a new ticket until the VM's screen answers again.
    served.vm.destroy()
    expect(page.locator("#console-status")).not_to_have_attribute("data-state", "connected",
                                                                  timeout=30_000)
    served.vm.create()
    status(page, "connected", timeout=60_000)
    page.wait_for_function(DRAWN, timeout=30_000)
    no_violations(page)
    page.close()


def test_the_console_pops_out_into_its_own_window(served: Served,
                                                 browser: Browser) -> None:  # noqa: F811
    page = console_page(browser, served.server.url, "otto", served.vm.name(), "screen")
    status(page, "connected")
    with page.context.expect_page() as opened:
        page.click("#console-popout")
    popout = opened.value
    expect(popout.locator("#console-view h1")).to_contain_text(f"VM {served.vm.name()}")
    assert "view=console" in popout.url and "tab=screen" in popout.url
    expect(popout.locator("#console-status")).to_have_attribute("data-state", "connected",
                                                                timeout=30_000)
    popout.wait_for_function(DRAWN, timeout=30_000)
    assert popout.locator("#tree").count() == 0  # the console alone
    popout.close()
    page.close()


def test_a_viewer_has_the_consoles_buttons_disabled(served: Served,
                                                    browser: Browser) -> None:  # noqa: F811
    page = console_page(browser, served.server.url, "vera", served.vm.name())
    for sub in ("serial", "screen"):
        page.click(f"[data-console-view={sub}]")
        status(page, "off")
        expect(page.locator("#console-status")).to_have_text("A console needs the operator role.")
        buttons = ["#console-fullscreen", "#console-popout", "#console-reconnect",
                   "#console-paste-send"] + (["#console-cad"] if sub == "screen" else [])
        for button in buttons:
            expect(page.locator(button)).to_be_disabled()
        expect(page.locator("#console-paste")).to_be_disabled()
    # The log, the console's history, is a viewer's to read.
    page.click("[data-console-view=log]")
    expect(page.locator("#console")).to_be_visible()
    no_violations(page)
    page.close()


@pytest.fixture(scope="module")
def guest_server(guest: Settings,  # noqa: F811
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    path = tmp_path_factory.mktemp("console-page-db") / "inventory.db"
    database = Database.open(guest, f"sqlite:///{path}")
    add_vm(database, GUEST, "running")
    running = open_server(guest, database)
    yield running
    running.stop()
    database.close()


def rows(page: Page) -> str:
    return str(page.evaluate(
        "[...document.querySelectorAll('#console-serial .xterm-rows > div')]"
        ".map((row) => row.textContent).join('\\n')"))


def test_the_serial_console_shows_the_login_prompt_and_takes_typing(
        guest_server: Server, browser: Browser) -> None:  # noqa: F811
    page = console_page(browser, guest_server.url, "otto", GUEST)
    status(page, "connected")
    page.click("#console-serial")
    page.keyboard.press("Enter")  # a fresh prompt: the first was printed before anyone looked
    page.wait_for_function(SHOWS, arg="login:", timeout=180_000)
    page.keyboard.type("root")
    page.keyboard.press("Enter")
    page.wait_for_function(SHOWS, arg="Password:", timeout=60_000)
    shot(page, "console-serial")
    # xterm's own styles (sizes, colours) are applied, though the CSP forbids inline style.
    height = page.evaluate("document.querySelector('#console-serial .xterm-rows > div span')"
                          "?.getBoundingClientRect().height || 0")
    assert height > 0, rows(page)
    no_violations(page)
    page.keyboard.press("Enter")  # no password: the guest says so and asks again
    page.close()



def test_a_serial_console_taken_by_another_session_is_not_taken_back(
        served: Served, browser: Browser) -> None:  # noqa: F811
    page = console_page(browser, served.server.url, "otto", served.vm.name())
    status(page, "connected")
    expect(page.locator("#console-reconnect")).to_be_disabled()
    otto = login(httpx.Client(base_url=served.server.url), "otto")
    path = f"/api/v1/vms/local/{served.vm.name()}/console"
    issued = httpx.post(f"{served.server.url}{path}/tickets", headers=otto,
                        json={"kind": "serial"}).json()
    url = f"{served.server.url.replace('http', 'ws', 1)}{path}/serial?ticket={issued['ticket']}"
    with connect(url, additional_headers=otto, open_timeout=20) as other:
        # The page's session ends and rests there (no timer: two pages reconnecting would
        # take the console from each other for ever); its Reconnect takes it back on demand.
        status(page, "ended")
        expect(page.locator("#console-status")).to_contain_text("another session took it")
        page.click("#console-reconnect")
        status(page, "connected")
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                other.recv(timeout=30)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000
    no_violations(page)
    page.close()
