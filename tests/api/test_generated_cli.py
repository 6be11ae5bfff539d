"""The commands made from the catalogue, run for real: on this machine (the operation's
handler against libvirt) and through a served API (its route, a GET one for the reads), with
the same lines, the same `--json` (the operation's typed result) and, for several targets,
one line each and exit status 5 when any failed."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import libvirt
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from glasspane.inventory.db import Database
from tests.api.conftest import login, serve
from tests.api.test_api import add_vm
from tests.cli.runner import run_cli
from tests.hypervisors.conftest import URI


@pytest.fixture
def halted() -> Iterator[str]:
    """A defined, halted domain with no disk: `vm set` changes its definition, nothing boots."""
    conn = libvirt.open(URI)
    name = f"gp-gen-{uuid.uuid4().hex[:8]}"
    dom = conn.defineXML(f"""<domain type='qemu'>
  <name>{name}</name><memory unit='MiB'>128</memory><vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
</domain>""")
    yield name
    try:
        dom.undefine()
    except libvirt.libvirtError:  # destroyed by the test itself
        pass
    conn.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_generated_commands_here_and_through_a_server(
        app: FastAPI, client: TestClient, database: Database, halted: str,
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    add_vm(database, halted, "halted")
    monkeypatch.setenv("GLASSPANE_TOKEN", login(client, "otto")["Authorization"].split()[1])
    server = serve(app)
    try:
        for where in ((), ("--server", server.url)):
            r = run_cli(capsys, *where, "vm", "set", halted, "--cpus", "2", "--json")
            assert r.code == 0, r.err
            assert json.loads(r.out) == {"cpus": 2, "memory_mib": None,
                                         "applies": "at the next boot"}
            r = run_cli(capsys, *where, "vm", "set", halted, "--memory", "256")
            assert (r.code, r.out) == (0, f"VM {halted}: 256 MiB from its next boot\n"), r.err
            # Several targets: each its own line, the missing one named, exit status 5.
            r = run_cli(capsys, *where, "vm", "set", halted, "--cpus", "0")
            assert r.code == 2 and "0 is not in the range 1<=x<=64" in r.err
            r = run_cli(capsys, *where, "vm", "start", "gp-gen-none-1", "gp-gen-none-2")
            assert r.code == 5 and r.out == "", r.err
            assert [line.split(": ")[2] for line in r.err.splitlines()] == \
                ["VM gp-gen-none-1", "VM gp-gen-none-2"]
            assert "no VM named 'gp-gen-none-2'" in r.err
            # A read made from the catalogue (a GET route through the server).
            for read in (("engine", "gp-gen-none"), ("top", "gp-gen-none", "web")):
                r = run_cli(capsys, *where, "container", *read)
                assert r.code == 6 and "no VM named 'gp-gen-none' on host local" in r.err, r.err
    finally:
        server.stop()
    # Here, the many-target line of a task operation, in its JSON-lines form too.
    r = run_cli(capsys, "vm", "destroy", halted, "gp-gen-none-3", "--json")
    assert r.code == 5 and json.loads(r.out) == {"destroyed": halted}, r.err
    assert "glasspane: error: VM gp-gen-none-3: no VM named 'gp-gen-none-3'" in r.err
