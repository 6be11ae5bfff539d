"""Opening a VM's console, shared by the API's WebSockets and the CLI's local attachment."""

from __future__ import annotations

from glasspane.enums import ConsoleKind
from glasspane.hosts.registry import HostRegistry
from glasspane.hosts.service import connect
from glasspane.hypervisors.capabilities import Capability, require
from glasspane.hypervisors.channels import Channel
from glasspane.settings import Settings


def open_console(settings: Settings, name: str, host: str, kind: ConsoleKind) -> Channel:
    """A channel to VM `name`'s serial console or screen.  The host's connection stays
    open as long as the channel (XAPI's session is the console's credential), and closes
    with it."""
    driver = connect(HostRegistry(settings).get(host), settings)
    try:
        consoles = require(driver, Capability.CONSOLE, "opening a console")
        channel = consoles.open_serial(name) if kind == ConsoleKind.SERIAL else \
            consoles.open_screen(name)
    except BaseException:
        driver.close()
        raise
    channel.on_close(driver.close)
    return channel
