"""A real libvirtd (started by `make test` via scripts/ensure-libvirtd) and a glasspane whose
configuration and cache live in the test's own directories."""

from __future__ import annotations

import shutil
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import libvirt
import pytest

from glasspane.errors import CommandFailed
from glasspane.hypervisors.probe_kernel import Payload, fetch_kernel, find_payload
from glasspane.settings import Settings

URI = "qemu:///system"


@pytest.fixture(scope="session")
def qemu() -> str:
    path = shutil.which("qemu-system-x86_64")
    if path is None:
        pytest.fail("qemu-system-x86_64 is missing: `make test` installs qemu-system-x86")
    return path


@pytest.fixture(scope="session")
def payload() -> Payload:
    """The machine's probe kernel (`make setup` fetches it): a stock Debian kernel."""
    found = find_payload()
    if found is None:
        try:
            found = fetch_kernel()
        except CommandFailed as exc:
            pytest.fail(f"no probe kernel, and none could be fetched ({exc}): run `make setup`")
    return found


@pytest.fixture(scope="session")
def libvirt_conn() -> Iterator[libvirt.virConnect]:
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        pytest.fail(f"libvirtd does not answer on {URI} ({exc}): `make test` starts it")
    yield conn
    conn.close()


def isolate(monkeypatch: pytest.MonkeyPatch, base: Path) -> Path:
    """Point glasspane's directories into `base`; the runtime directory (SSH control sockets,
    whose paths must stay short) is a new one under /tmp, returned for the teardown."""
    monkeypatch.setenv("GLASSPANE_CONFIG_DIR", str(base / "config"))
    monkeypatch.setenv("GLASSPANE_DATA_DIR", str(base / "data"))
    monkeypatch.setenv("GLASSPANE_CACHE_DIR", str(base / "cache"))
    monkeypatch.delenv("GLASSPANE_DATABASE_URL", raising=False)  # SQLite in base/data
    runtime = Path(tempfile.mkdtemp(prefix="gp-rt-"))
    monkeypatch.setenv("GLASSPANE_RUNTIME_DIR", str(runtime))
    return runtime


def release(runtime: Path) -> None:
    """Close the kept connections of a test's glasspane and remove its runtime directory."""
    from glasspane.containers import sessions
    from glasspane.guests.ssh import stop_masters
    from glasspane.inventory.db import close_shared
    sessions.close_all()
    close_shared()  # the registry's database of the test's data directory
    stop_masters(runtime)
    shutil.rmtree(runtime, ignore_errors=True)


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    runtime = isolate(monkeypatch, tmp_path)
    yield Settings.load()
    release(runtime)


def remove_pool(conn: libvirt.virConnect, name: str) -> None:
    try:
        pool = conn.storagePoolLookupByName(name)
    except libvirt.libvirtError:
        return
    path = pool.XMLDesc(0).split("<path>")[1].split("</path>")[0]
    if pool.isActive():
        pool.refresh(0)
        for vol in pool.listAllVolumes():
            vol.delete(0)
        pool.destroy()
    pool.undefine()
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def storage(settings: Settings, libvirt_conn: libvirt.virConnect,
            monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Template and VM storage of the test's own, removed afterwards."""
    name = f"gp-test-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("GLASSPANE_TEMPLATE_STORAGE", name)
    monkeypatch.setenv("GLASSPANE_VM_STORAGE", name + "-vms")
    yield name
    remove_pool(libvirt_conn, name + "-vms")
    remove_pool(libvirt_conn, name)


@contextmanager
def guest_world(base: Path, prefix: str, vms: tuple[str, ...]) -> Iterator[Settings]:
    """A glasspane of the caller's own (directories, storage pools) holding the Debian template
    `deb`, for module-scoped fixtures that boot real VMs; afterwards the VMs named `vms`, the
    pools and the kept connections are gone."""
    from glasspane.templates.service import template_from_debian
    from glasspane.vms.service import destroy_vm
    patch = pytest.MonkeyPatch()
    runtime = isolate(patch, base)
    patch.delenv("GLASSPANE_CACHE_DIR")  # the machine's guest image cache: built once
    storage = f"{prefix}-{uuid.uuid4().hex[:8]}"
    patch.setenv("GLASSPANE_TEMPLATE_STORAGE", storage)
    patch.setenv("GLASSPANE_VM_STORAGE", storage + "-vms")
    settings = Settings.load()
    try:
        template_from_debian(settings, "deb")
        yield settings
    finally:
        for name in vms:
            with suppress(Exception):
                destroy_vm(settings, name)
        release(runtime)
        conn = libvirt.open(URI)
        remove_pool(conn, storage + "-vms")
        remove_pool(conn, storage)
        conn.close()
        patch.undo()
