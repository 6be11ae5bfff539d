"""Host operations shared by the CLI and the API."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from glasspane import hypervisors
from glasspane.errors import UsageError
from glasspane.hosts.registry import HostRecord, HostRegistry
from glasspane.hypervisors.base import HostInfo
from glasspane.hypervisors.capabilities import Driver
from glasspane.settings import Settings


def connect(record: HostRecord, settings: Settings, password: str | None = None) -> Driver:
    """A driver connected to the host (with its registered password unless `password` is
    given, read only by drivers that log in with one); raises HostUnreachable."""
    def secret() -> str:
        return password if password is not None else \
            HostRegistry(settings).password(record.name)
    with _pinned(record.ca_pem) as ca_file:
        return hypervisors.connect(record.name, record.uri, record.driver, user=record.user,
                                   password=secret, verify_tls=record.verify_tls,
                                   ca_file=ca_file, cache_dir=settings.cache_dir)


@contextmanager
def _pinned(pem: str) -> Iterator[str | None]:
    """The pinned certificate (kept in the database) as the file the driver loads its TLS
    context from, once, while it connects: private, and gone afterwards."""
    if not pem:
        yield None
        return
    fd, path = tempfile.mkstemp(prefix="glasspane-ca-", suffix=".pem")  # 0600
    try:
        with os.fdopen(fd, "w") as f:
            f.write(pem)
        yield path
    finally:
        os.unlink(path)


@contextmanager
def host_driver(settings: Settings, host: str) -> Iterator[Driver]:
    """A connection to the registered host named `host`, closed afterwards."""
    driver = connect(HostRegistry(settings).get(host), settings)
    try:
        yield driver
    finally:
        driver.close()


def has_storage(driver: Driver, name: str) -> bool:
    return any(s.name == name for s in driver.list_storage())


def add_host(settings: Settings, name: str, uri: str, driver: str = "libvirt",
             check: bool = True, user: str = "", password: str | None = None,
             verify_tls: bool = True, ca_file: str | None = None) -> HostRecord:
    """Register a host; with `check`, only once a connection to it has succeeded.  Its
    password (encrypted) and the certificate of `ca_file` (pinned) are kept with it in the
    database.  Everything is checked before the one write, so a refusal leaves nothing."""
    try:
        pem = Path(ca_file).read_text() if ca_file else ""
    except (OSError, ValueError) as exc:
        raise UsageError(f"host {name}: the certificate to pin cannot be read",
                         hint="a PEM file, e.g. the pool master's "
                              "/etc/xensource/xapi-ssl.pem") from exc
    record = HostRecord(name, uri, driver, user, verify_tls, pem)
    registry = HostRegistry(settings)
    registry.check_new(record)
    if check:
        connect(record, settings, password or "").close()
    registry.add(record, password)
    return record


def host_info(settings: Settings, name: str) -> HostInfo:
    with host_driver(settings, name) as driver:
        return driver.host_info()
