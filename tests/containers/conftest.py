"""Two real VMs from the real Debian template, under TCG, shared by the module's tests (each
VM costs about a minute to boot): containers are loaded, run and broken inside them."""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import libvirt
import pytest
from tests.hypervisors.conftest import URI, isolate, release, remove_pool

from glasspane.settings import Settings

VMS = ("ct-a", "ct-b")


@dataclass
class Guests:
    settings: Settings
    addresses: dict[str, str]
    base: Path

    def ssh(self, vm: str, *command: str, check: bool = True) -> str:
        """Run `command` in the VM with glasspane's own key (a test's side door)."""
        key = self.settings.config_dir / "ssh" / "id_ed25519"
        return subprocess.run(
            ["ssh", "-i", str(key), "-o", "StrictHostKeyChecking=no", "-o",
             "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "LogLevel=ERROR",
             f"debian@{self.addresses[vm]}", *command],
            capture_output=True, text=True, timeout=120, check=check).stdout


@pytest.fixture(scope="module")
def guests(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Guests]:
    from glasspane.templates.service import template_from_debian
    from glasspane.vms.service import VmRequest, create_vms, destroy_vm
    patch = pytest.MonkeyPatch()
    base = tmp_path_factory.mktemp("containers")
    runtime = isolate(patch, base)
    patch.delenv("GLASSPANE_CACHE_DIR")  # the machine's guest image cache: built once
    storage = f"gp-ct-{uuid.uuid4().hex[:8]}"
    patch.setenv("GLASSPANE_TEMPLATE_STORAGE", storage)
    patch.setenv("GLASSPANE_VM_STORAGE", storage + "-vms")
    settings = Settings.load()
    try:
        template_from_debian(settings, "deb")
        created = create_vms(settings, [VmRequest(name, "deb", memory_mib=640) for name in VMS])
        for result in created:
            if isinstance(result, Exception):
                raise result
        yield Guests(settings, {r.name: r.addresses[0] for r in created
                                if not isinstance(r, Exception)}, base)
    finally:
        for name in VMS:
            with suppress(Exception):
                destroy_vm(settings, name)
        release(runtime)
        conn = libvirt.open(URI)
        remove_pool(conn, storage + "-vms")
        remove_pool(conn, storage)
        conn.close()
        patch.undo()
