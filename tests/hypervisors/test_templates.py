"""Templates against a real libvirtd: any toolkit format in, a qcow2 volume out, and removal
refused while something depends on it."""

from __future__ import annotations

import json
import subprocess
import uuid
from pathlib import Path

import libvirt
import pytest

from glasspane.settings import Settings
from tests.cli.runner import run_cli
from tests.images.helpers import assert_same, convert_to

pytestmark = pytest.mark.integration


@pytest.fixture
def xva(sample_raw: Path, tmp_path: Path) -> Path:
    return convert_to(sample_raw, tmp_path / "exported.xva", vm_name="web")


def test_import_an_xva_as_a_template(capsys: pytest.CaptureFixture[str], storage: str,
                                     xva: Path, sample_raw: Path) -> None:
    r = run_cli(capsys, "template", "import", "-q", "web", str(xva))
    assert r.code == 0, r.err
    r = run_cli(capsys, "template", "list", "--json")
    [info] = json.loads(r.out)
    assert info["name"] == "web" and info["format"] == "qcow2"
    assert info["virtual_size"] == sample_raw.stat().st_size
    assert info["path"].endswith(f"/{storage}/web.qcow2")
    assert_same(sample_raw, Path(info["path"]))
    check = subprocess.run(["qemu-img", "compare", "-f", "raw", "-F", "qcow2", str(sample_raw),
                            info["path"]], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout
    r = run_cli(capsys, "template", "import", "-q", "web", str(xva))
    assert r.code == 2 and "already exists" in r.err


def test_import_through_a_remote_style_uri(capsys: pytest.CaptureFixture[str], storage: str,
                                           sample_raw: Path, tmp_path: Path) -> None:
    """The upload goes through the libvirt connection, as for a remote host."""
    uri = "qemu+unix:///system"
    assert run_cli(capsys, "host", "add", "same-via-socket", uri).code == 0
    vhd = convert_to(sample_raw, tmp_path / "d.vhd")
    r = run_cli(capsys, "template", "import", "-q", "--host", "same-via-socket", "base", str(vhd))
    assert r.code == 0, r.err
    names = [t["name"] for t in json.loads(run_cli(capsys, "template", "list", "--json").out)]
    assert names == ["base"]


def test_remove_is_refused_while_in_use(capsys: pytest.CaptureFixture[str], storage: str,
                                        xva: Path, libvirt_conn: libvirt.virConnect) -> None:
    assert run_cli(capsys, "template", "import", "-q", "web", str(xva)).code == 0
    path = json.loads(run_cli(capsys, "template", "list", "--json").out)[0]["path"]
    name = f"gp-test-{uuid.uuid4().hex[:8]}"
    dom = libvirt_conn.defineXML(f"""<domain type='qemu'><name>{name}</name>
      <memory unit='MiB'>64</memory><os><type arch='x86_64' machine='q35'>hvm</type></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/>
        <source file='{path}'/><target dev='vda' bus='virtio'/></disk></devices></domain>""")
    try:
        r = run_cli(capsys, "template", "remove", "web")
        assert r.code == 2 and f"in use by VM {name}" in r.err
    finally:
        dom.undefine()
    pool = libvirt_conn.storagePoolLookupByName(storage)
    overlay = pool.createXML(f"""<volume><name>clone.qcow2</name>
      <capacity unit='bytes'>{1 << 30}</capacity><target><format type='qcow2'/></target>
      <backingStore><path>{path}</path><format type='qcow2'/></backingStore></volume>""", 0)
    r = run_cli(capsys, "template", "remove", "web")
    assert r.code == 2 and "in use by volume" in r.err and "clone.qcow2" in r.err
    overlay.delete(0)
    assert run_cli(capsys, "template", "remove", "web").code == 0
    assert json.loads(run_cli(capsys, "template", "list", "--json").out) == []
    assert not Path(path).exists()


def test_bad_imports_leave_nothing(capsys: pytest.CaptureFixture[str], storage: str,
                                   tmp_path: Path, settings: Settings) -> None:
    broken = tmp_path / "broken.qcow2"
    broken.write_bytes(b"QFI\xfb" + bytes(60))
    r = run_cli(capsys, "template", "import", "-q", "t1", str(broken))
    assert r.code == 3 and "qcow2 header" in r.err
    r = run_cli(capsys, "template", "import", "-q", "bad/name", str(broken))
    assert r.code == 2 and "invalid template name" in r.err
    assert json.loads(run_cli(capsys, "template", "list", "--json").out) == []
    assert not list((settings.cache_dir).glob("import-*"))
    r = run_cli(capsys, "template", "remove", "nope")
    assert r.code == 6


def test_template_from_debian(capsys: pytest.CaptureFixture[str], storage: str,
                              monkeypatch: pytest.MonkeyPatch,
                              libvirt_conn: libvirt.virConnect) -> None:
    monkeypatch.delenv("GLASSPANE_CACHE_DIR")  # the machine's image cache: built once
    r = run_cli(capsys, "template", "from-debian", "-q", "debian12")
    assert r.code == 0, r.err
    [info] = json.loads(run_cli(capsys, "template", "list", "--json").out)
    assert info["name"] == "debian12" and info["virtual_size"] == 3 << 30
    pool = libvirt_conn.storagePoolLookupByName(storage)
    assert sorted(pool.listVolumes()) == ["debian12.initrd", "debian12.qcow2",
                                          "debian12.vmlinuz"]
    assert run_cli(capsys, "template", "remove", "debian12").code == 0
    pool.refresh(0)
    assert pool.listVolumes() == []
