"""The CLI through a real server (`--server URL`): login keeps a 0600 token, lists come from
the server's inventory, actions run as the server's tasks and are followed to their end, roles
apply, and commands without an API call refuse rather than act locally."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import libvirt
import pytest

from glasspane.api.app import create_app
from glasspane.inventory.db import Database
from glasspane.settings import Settings
from tests.api.conftest import PASSWORDS, serve
from tests.cli.runner import run_cli

pytestmark = pytest.mark.integration


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_cli_through_the_server(capsys: pytest.CaptureFixture[str], settings: Settings,
                                database: Database, domain: libvirt.virDomain,
                                tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(create_app(settings, database, sync_interval=1))
    name = domain.name()
    try:
        monkeypatch.delenv("GLASSPANE_TOKEN", raising=False)
        url = server.url
        r = run_cli(capsys, "--server", url, "vm", "list")
        assert r.code == 2 and "no token" in r.err
        password = tmp_path / "pw"
        password.write_text(PASSWORDS["otto"])
        r = run_cli(capsys, "--server", url, "login", "otto", "--password-file", str(password))
        assert r.code == 0 and "as otto (operator)" in r.out, r.err
        token = settings.config_dir / "token"
        assert stat.S_IMODE(token.stat().st_mode) == 0o600

        deadline = time.monotonic() + 30
        while True:  # the server's sync finds the domain
            r = run_cli(capsys, "--server", url, "vm", "list", "--json")
            rows = {v["name"]: v for v in json.loads(r.out)}
            if name in rows:
                break
            assert time.monotonic() < deadline, r.out + r.err
            time.sleep(0.5)
        assert rows[name]["power_state"] == "running"

        r = run_cli(capsys, "--server", url, "vm", "pause", name)
        assert r.code == 0 and r.out.strip() == f"VM {name}: paused", r.out + r.err
        assert domain.info()[0] == libvirt.VIR_DOMAIN_PAUSED
        r = run_cli(capsys, "--server", url, "vm", "resume", name)
        assert r.code == 0 and r.out.strip() == f"VM {name}: running", r.out + r.err
        r = run_cli(capsys, "--server", url, "vm", "resume", name)
        assert r.code == 5 and "is running: resume needs it paused or suspended" in r.err
        r = run_cli(capsys, "--server", url, "vm", "info", name, "--json")
        assert r.code == 0, r.err
        info = json.loads(r.out)
        assert info["power_state"] == "running" and info["snapshots"] == []
        tasks = json.loads(run_cli(capsys, "--server", url, "task", "list", "--json").out)
        assert [t["state"] for t in tasks[:2]] == ["succeeded", "succeeded"]
        assert tasks[0]["created_by"] == "otto"

        r = run_cli(capsys, "--server", url, "inventory", "--list")
        assert r.code == 2 and "does not work through --server yet" in r.err

        password.write_text(PASSWORDS["vera"])
        assert run_cli(capsys, "--server", url, "login", "vera", "--password-file",
                       str(password)).code == 0
        r = run_cli(capsys, "--server", url, "vm", "pause", name)
        assert r.code == 5 and "vera is a viewer; this needs operator" in r.err
        assert run_cli(capsys, "--server", url, "logout").code == 0
        assert not token.exists()
    finally:
        server.stop()
