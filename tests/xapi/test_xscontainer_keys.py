"""The xscontainer keys kept fresh on a pool (the loopback XAPI): cleared when a VM stops or
reports no address, written in one call, never carried into a clone or an imported template,
and left alone on a pool that runs xscontainer itself.  (Writing them from a real guest's
engine: tests/containers/test_containers.py.)"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from glasspane.settings import Settings
from tests.cli.runner import run_cli
from tests.xapi.server import NULL, Running, Xapi
from tests.xapi.test_xenapi_driver import add_pool

STALE = {"xscontainer-monitor": "True", "docker_ps": "<docker_ps><item><entry><status>Up"
         "</status></entry></item></docker_ps>", "docker_info": "<docker_info/>",
         "docker_version": "<docker_version/>"}


def vm_named(pool: Xapi, name: str) -> dict[str, object]:
    [record] = [v for v in pool.objects["VM"].values() if v["name_label"] == name]
    return record


def test_stale_keys_are_cleared_in_one_call(capsys: pytest.CaptureFixture[str],
                                            settings: Settings, xapi: Running,
                                            password_file: Path) -> None:
    from glasspane.inventory.sync import sync_xscontainer_keys
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    db, web = vm_named(pool, "db-1"), vm_named(pool, "web-1")
    db["other_config"] = {**STALE, "owner": "kept"}  # halted: its containers are not up
    web["other_config"] = dict(STALE)
    web["guest_metrics"] = NULL  # running, but its tools report no address
    pool.calls.clear()
    assert sync_xscontainer_keys(settings) == 2
    assert db["other_config"] == {"owner": "kept"} and web["other_config"] == {}
    # One write per VM: readers never see a key missing between a remove and an add.
    assert pool.calls.count("VM.set_other_config") == 2
    assert "VM.remove_from_other_config" not in pool.calls
    pool.calls.clear()
    assert sync_xscontainer_keys(settings) == 0
    assert "VM.set_other_config" not in pool.calls, "nothing to clear: nothing written"


def test_a_pool_running_xscontainer_is_left_to_it(capsys: pytest.CaptureFixture[str],
                                                  settings: Settings, xapi: Running,
                                                  password_file: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    from glasspane.inventory.sync import sync_xscontainer_keys
    pool = xapi.xapi
    pool.plugins["xscontainer"] = {"register", "deregister", "get_top", "get_inspect"}
    add_pool(capsys, xapi.url, password_file)
    vm_named(pool, "db-1")["other_config"] = dict(STALE)
    with caplog.at_level(logging.WARNING, logger="glasspane.sync"):
        assert sync_xscontainer_keys(settings) == 0
        assert sync_xscontainer_keys(settings) == 0
    assert vm_named(pool, "db-1")["other_config"] == STALE
    said = [r.getMessage() for r in caplog.records if "runs xscontainer" in r.getMessage()]
    assert len(said) == 1 and "on xcp1" in said[0]


def test_clones_and_imports_do_not_inherit_them(capsys: pytest.CaptureFixture[str],
                                                settings: Settings, xapi: Running,
                                                password_file: Path, tmp_path: Path) -> None:
    from glasspane.images.vm import VmSettings
    from glasspane.images.xva_meta import build_ova_xml
    from tests.images.xva_builder import build_xva
    pool = xapi.xapi
    add_pool(capsys, xapi.url, password_file)
    vm_named(pool, "debian-12")["other_config"] = {**STALE, "owner": "kept"}
    for name, full in (("clone-1", []), ("copy-1", ["--full"])):
        r = run_cli(capsys, "vm", "create", name, "--template", "debian-12", "--host", "xcp",
                    "--no-wait", *full)
        assert r.code == 0, r.err
        assert vm_named(pool, name)["other_config"] == {"owner": "kept"}, name
    # An XVA exported from a VM that had them (XAPI keeps other_config in ova.xml).
    ova = build_ova_xml(VmSettings("exported", 1, 512), [1 << 20]).replace(
        b"<name>glasspane</name>", b"<name>docker_ps</name>")
    assert b"docker_ps" in ova
    xva = tmp_path / "with-keys.xva"
    build_xva(xva, [(1 << 20, [(0, b"x" * (1 << 20))])], ova_xml=ova)
    r = run_cli(capsys, "template", "import", "from-export", str(xva), "--host", "xcp")
    assert r.code == 0, r.err
    assert "docker_ps" not in vm_named(pool, "from-export")["other_config"]
