"""A XenServer VM's screen, as Xen Orchestra opens it: the VM's console of protocol `rfb`
(the console class: `location` is the URL of XAPI's console handler on the host the VM runs
on), opened with `CONNECT <location's path and query>&session_id=...` over the pool's
transport (TLS, the host's certificate trusted as for the pool's other HTTP handlers); after
XAPI's 200 the connection is RFB.  XAPI serves no serial console (its text console is the
guest's own `vt100` one, through the same handler, for PV guests only): a serial console
is refused as missing."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from glasspane.errors import Conflict, HostError, HostUnreachable
from glasspane.hypervisors import xapi_http
from glasspane.hypervisors.channels import Channel, spliced

if TYPE_CHECKING:
    from glasspane.hypervisors.xenapi_driver import XenApiDriver


def console_url(driver: XenApiDriver, name: str, session: str) -> str:
    """Where to CONNECT for VM `name`'s screen, session included."""
    _ref, record = driver._vm(name)
    if record["power_state"] != "Running":
        raise Conflict(f"VM {name} on host {driver.name} is {record['power_state'].lower()}: "
                       "its screen is there only while it runs", hint="start the VM first")
    consoles: list[dict[str, Any]] = [
        driver._call(f"reading the consoles of VM {name}", "console.get_record", console)
        for console in record["consoles"]]
    rfb = [c for c in consoles if c["protocol"] == "rfb"]
    if not rfb:
        raise Conflict(f"VM {name} on host {driver.name} has no graphical console",
                       hint="XAPI gives a running HVM guest one")
    location = urlsplit(str(rfb[0]["location"]))
    pool = urlsplit(driver.uri)
    # The location names the host the VM runs on by its management address; the master is
    # reached as glasspane reaches the pool (its name, its port), a member at its address.
    netloc = location.netloc
    if location.hostname == _master_address(driver):
        netloc = pool.netloc.rpartition("@")[2]
    query = [(k, v) for k, v in parse_qsl(location.query) if k != "session_id"]
    return location._replace(scheme=pool.scheme, netloc=netloc,
                             query=urlencode([*query, ("session_id", session)])).geturl()


def _master_address(driver: XenApiDriver) -> str:
    pools = driver._call("reading the pool", "pool.get_all_records")
    master = next(iter(pools.values()))["master"] if pools else None
    hosts = driver._call("listing hosts", "host.get_all_records")
    return str(hosts[master]["address"]) if master in hosts else ""


def open_screen(driver: XenApiDriver, name: str, session: str) -> Channel:
    url = console_url(driver, name, session)
    what = f"opening the screen of VM {name}"
    try:
        sock = xapi_http.connect(url, driver._peer)
    except xapi_http.UntrustedPeer as exc:
        raise driver._untrusted(what, exc) from exc
    except xapi_http.HttpFailure as exc:
        if exc.status == 0:
            raise HostUnreachable(f"{what}: {exc.detail}", host=driver.name) from None
        raise HostError(f"{what}: XAPI refused it: {exc.detail}", host=driver.name) from None
    # A TLS connection cannot be handed to the relay's event loop as it is: spliced.
    return spliced(sock) if isinstance(sock, ssl.SSLSocket) else Channel(sock)


def no_serial(driver: XenApiDriver, name: str) -> Channel:
    raise Conflict(f"host {driver.name} (xenapi) gives no serial console for VM {name}",
                   hint="open its screen (the vnc console) instead")
