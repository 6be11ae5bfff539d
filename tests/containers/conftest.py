"""Two real VMs from the real Debian template, under TCG, shared by the module's tests (each
VM costs about a minute to boot): containers are loaded, run and broken inside them."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.hypervisors.conftest import guest_world

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
    from glasspane.vms.service import VmRequest, create_vms
    base = tmp_path_factory.mktemp("containers")
    with guest_world(base, "gp-ct", VMS) as settings:
        created = create_vms(settings, [VmRequest(name, "deb", memory_mib=640) for name in VMS])
        for result in created:
            if isinstance(result, Exception):
                raise result
        yield Guests(settings, {r.name: r.addresses[0] for r in created
                                if not isinstance(r, Exception)}, base)
