"""A command's files, through a server and here, from one declaration: the catalogue's file
fields (a local file sent for the command or `@NAME` for a stored one; an output fetched
back) and the same typed answer either way."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from glasspane.api.app import create_app
from glasspane.images.sample import write_sample
from glasspane.inventory.db import Database
from glasspane.settings import Settings
from tests.api.conftest import Server, serve
from tests.api.test_store import _cli_login
from tests.cli.runner import run_cli
from tests.hypervisors.conftest import libvirt_conn, storage  # noqa: F401 - own pools
from tests.images.helpers import convert_to

pytestmark = [pytest.mark.integration,
              pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)]
MIB = 1 << 20
CHANGED_AT = 5 * MIB + 12345


@pytest.fixture
def server(settings: Settings, database: Database) -> Iterator[Server]:
    running = serve(create_app(settings, database, sync_interval=2))
    yield running
    running.stop()


@pytest.fixture
def disks(tmp_path: Path) -> tuple[Path, Path]:
    """A qcow2 disk and a raw copy of its content with one byte changed."""
    raw = tmp_path / "disk.raw"
    write_sample(str(raw), 8 * MIB)
    qcow2 = convert_to(raw, tmp_path / "disk.qcow2")
    with open(raw, "r+b") as f:
        f.seek(CHANGED_AT)
        byte = f.read(1)[0]
        f.seek(CHANGED_AT)
        f.write(bytes([byte ^ 0xFF]))
    return qcow2, raw


def _both(capsys: pytest.CaptureFixture[str], url: str, *args: str) -> list[Any]:
    """The JSON the command prints here and through the server."""
    here = run_cli(capsys, *args)
    there = run_cli(capsys, "--server", url, *args)
    assert here.code == there.code, (here.err, there.err)
    return [json.loads(here.out), json.loads(there.out)]


def test_check_and_compare_answer_alike_here_and_through_a_server(
        capsys: pytest.CaptureFixture[str], server: Server, tmp_path: Path,
        disks: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """`image compare --json` through a server printed the comparisons in words, here the
    toolkit's records (where the first difference is); `image check --json` differed too."""
    monkeypatch.delenv("GLASSPANE_TOKEN", raising=False)
    _cli_login(capsys, server.url, "otto", tmp_path)
    qcow2, changed = disks
    here, there = _both(capsys, server.url, "image", "compare", "--json", str(qcow2),
                        str(changed))
    assert here == there and there[0]["first_difference"] == CHANGED_AT, there
    here, there = _both(capsys, server.url, "image", "check", "--json", str(qcow2))
    assert here == there == {"path": str(qcow2), "format": "qcow2", "ok": True,
                             "problems": []}


def test_a_template_is_imported_from_a_stored_image(
        capsys: pytest.CaptureFixture[str], server: Server, storage: str,  # noqa: F811
        tmp_path: Path, disks: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """`template import NAME @STORED --server` named a local file `@STORED` (which does not
    exist) where every other command takes `@NAME` as a stored image."""
    monkeypatch.delenv("GLASSPANE_TOKEN", raising=False)
    _cli_login(capsys, server.url, "otto", tmp_path)

    def cli(*args: str) -> Any:
        return run_cli(capsys, "--server", server.url, *args)
    qcow2, _ = disks
    assert cli("image", "put", str(qcow2), "base.qcow2").code == 0
    r = cli("template", "import", "from-store", "@base.qcow2", "--quiet")
    assert r.code == 0 and "imported template from-store on local" in r.out, r.out + r.err
    r = cli("template", "import", "missing", "@absent.qcow2", "--quiet")
    assert r.code == 6 and "no image named 'absent.qcow2'" in r.err, r.err
    assert cli("template", "remove", "from-store").code == 0
    # The stored image stays: only one-off uploads are deleted after the command.
    assert [i["name"] for i in json.loads(cli("image", "list", "--json").out)] == \
        ["base.qcow2"]

