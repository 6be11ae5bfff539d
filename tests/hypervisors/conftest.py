"""A real libvirtd (started by `make test` via scripts/ensure-libvirtd) and a glasspane whose
configuration and cache live in the test's own directories."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import libvirt
import pytest

from glasspane.settings import Settings

URI = "qemu:///system"


@pytest.fixture(scope="session")
def libvirt_conn() -> Iterator[libvirt.virConnect]:
    try:
        conn = libvirt.open(URI)
    except libvirt.libvirtError as exc:
        pytest.fail(f"libvirtd does not answer on {URI} ({exc}): `make test` starts it")
    yield conn
    conn.close()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("GLASSPANE_CONFIG_DIR", str(tmp_path / "config"))
    monkeypatch.setenv("GLASSPANE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("GLASSPANE_CACHE_DIR", str(tmp_path / "cache"))
    return Settings.load()
