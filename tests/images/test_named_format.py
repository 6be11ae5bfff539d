"""A file whose name says one format and whose content is none (an empty `x.qcow2`, an
`x.vhd` of random bytes, a fixed VHD whose footer is damaged) is refused, naming the file and
the format it is not, instead of being read as a raw disk and converted into garbage; unless
the user says it is raw (`--from raw`)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from glasspane.errors import FormatError
from glasspane.images.check import check_image
from glasspane.images.convert import convert
from glasspane.images.detect import open_image
from glasspane.images.sample import MIB
from tests.cli.runner import run_cli
from tests.images.helpers import convert_to


def damaged_fixed_vhd(tmp_path: Path) -> Path:
    raw = tmp_path / "d.raw"
    raw.write_bytes(b"\5" * MIB)
    vhd = convert_to(raw, tmp_path / "damaged.vhd", vhd_type="fixed")
    data = bytearray(vhd.read_bytes())
    data[-512:-504] = b"XXXXXXXX"  # the footer's cookie
    vhd.write_bytes(bytes(data))
    return vhd


@pytest.fixture(params=["empty.qcow2", "random.vhd", "damaged.vhd", "text.vmdk", "zero.xva",
                        "junk.ova"])
def misnamed(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path, str]:
    name: str = request.param
    path = tmp_path / name
    if name == "damaged.vhd":
        damaged_fixed_vhd(tmp_path)
    elif name.startswith("empty"):
        path.write_bytes(b"")
    elif name.startswith("random"):
        path.write_bytes(os.urandom(MIB))
    elif name.startswith("text"):
        path.write_bytes(b"not a disk\n" * 100)
    else:
        path.write_bytes(bytes(2 * MIB))
    named = {"qcow2": "qcow2", "vhd": "VHD", "vmdk": "VMDK", "xva": "XVA", "ova": "OVA"}
    return path, named[path.suffix[1:]]


def test_refused_with_the_format_it_is_not(misnamed: tuple[Path, str], tmp_path: Path) -> None:
    path, fmt = misnamed
    out = tmp_path / "out.raw"
    with pytest.raises(FormatError, match=f"the content is not {fmt}") as refused:
        convert(str(path), str(out))
    assert str(path) in str(refused.value) and "--from raw" in str(refused.value)
    assert not out.exists()
    report = check_image(str(path))
    assert not report.ok and f"not {fmt}" in str(report.problems[0])
    # Said to be raw, it is read as raw.
    convert(str(path), str(out), src_format="raw")
    assert out.read_bytes() == path.read_bytes()


def test_a_real_format_under_another_name_is_read_as_what_it_is(tmp_path: Path) -> None:
    raw = tmp_path / "d.raw"
    raw.write_bytes(b"\3" * MIB)
    qcow2 = convert_to(raw, tmp_path / "d.qcow2")
    renamed = qcow2.rename(tmp_path / "d.vhd")
    image = open_image(str(renamed))
    try:
        assert image.format_name == "qcow2"
    finally:
        image.close()
    # Raw content under a raw name, or under no known name, is raw as before.
    for name in ("plain.img", "plain.bin", "plain"):
        (tmp_path / name).write_bytes(b"\1" * 4096)
        image = open_image(str(tmp_path / name))
        assert image.format_name == "raw"
        image.close()


def test_the_cli_refuses_unless_told_raw(capsys: pytest.CaptureFixture[str],
                                         tmp_path: Path) -> None:
    empty = tmp_path / "x.qcow2"
    empty.write_bytes(b"")
    random = tmp_path / "x.vhd"
    random.write_bytes(os.urandom(MIB))
    damaged = damaged_fixed_vhd(tmp_path)
    for path, fmt in ((empty, "qcow2"), (random, "VHD"), (damaged, "VHD")):
        out = tmp_path / "out.raw"
        r = run_cli(capsys, "image", "convert", str(path), str(out), "--quiet")
        assert r.code == 3, r.out + r.err
        assert f"the content is not {fmt}" in r.err and str(path) in r.err, r.err
        assert "--from raw" in r.err and len(r.err.strip().splitlines()) == 1, r.err
        assert not out.exists()
        r = run_cli(capsys, "image", "info", str(path))
        assert r.code == 3 and f"not {fmt}" in r.err, r.err
        r = run_cli(capsys, "image", "check", str(path))
        assert r.code == 1 and f"not {fmt}" in r.out, r.out
        r = run_cli(capsys, "image", "convert", str(path), str(out), "--from", "raw", "--quiet",
                    "--verify")
        assert r.code == 0, r.err
        assert out.read_bytes() == path.read_bytes()
        out.unlink()
        r = run_cli(capsys, "image", "info", str(path), "--from", "raw", "--json")
        assert r.code == 0 and '"format": "raw"' in r.out, r.err
