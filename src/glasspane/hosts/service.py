"""Host operations shared by the CLI and (later) the API."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from glasspane import hypervisors
from glasspane.hosts.registry import HostRecord, HostRegistry, HostSecrets
from glasspane.hypervisors.base import HostInfo
from glasspane.hypervisors.capabilities import Driver
from glasspane.settings import Settings, private_dir


def connect(record: HostRecord, settings: Settings) -> Driver:
    """A driver connected to the host; raises HostUnreachable."""
    return hypervisors.connect(record.name, record.uri, record.driver, user=record.user,
                               password=lambda: HostSecrets(settings.config_dir).get(
                                   record.name),
                               verify_tls=record.verify_tls,
                               ca_file=record.ca_file or None, cache_dir=settings.cache_dir)


@contextmanager
def host_driver(settings: Settings, host: str) -> Iterator[Driver]:
    """A connection to the registered host named `host`, closed afterwards."""
    driver = connect(HostRegistry(settings.config_dir).get(host), settings)
    try:
        yield driver
    finally:
        driver.close()


def has_storage(driver: Driver, name: str) -> bool:
    return any(s.name == name for s in driver.list_storage())


def add_host(settings: Settings, name: str, uri: str, driver: str = "libvirt",
             check: bool = True, user: str = "", password: str | None = None,
             verify_tls: bool = True, ca_file: str | None = None) -> HostRecord:
    """Register a host; with `check`, only once a connection to it has succeeded.  A
    password goes to the host secrets, never the registry; a pinned certificate is copied
    into CONFIG_DIR/certs/.  The name, driver and URI are checked before anything is
    written, and a refusal leaves nothing behind."""
    pinned = str(settings.config_dir / "certs" / f"{name}.pem") if ca_file else ""
    record = HostRecord(name, uri, driver, user, verify_tls, pinned)
    registry = HostRegistry(settings.config_dir)
    registry.check_new(record)
    secrets = HostSecrets(settings.config_dir)
    try:
        if ca_file:
            private_dir(settings.config_dir / "certs")
            shutil.copyfile(ca_file, pinned)
        if password is not None:
            secrets.set(name, password)
        if check:
            connect(record, settings).close()
        registry.add(record)
    except BaseException:
        if password is not None:
            secrets.set(name, None)
        if pinned:
            Path(pinned).unlink(missing_ok=True)
        raise
    return record


def host_info(settings: Settings, name: str) -> HostInfo:
    with host_driver(settings, name) as driver:
        return driver.host_info()
