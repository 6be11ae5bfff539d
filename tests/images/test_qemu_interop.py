"""Against the real qemu-img: it reads what glasspane writes (info, check, compare), and
glasspane reads what it writes, with the same content."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from glasspane.images.detect import open_disk
from glasspane.images.references import FOLLOW_ANYWHERE
from glasspane.images.sample import MIB
from tests.conftest import SAMPLE_SIZE
from tests.images.helpers import assert_pattern, assert_same, convert_to
from tests.images.make_test_images import OVERLAY_WRITES

pytestmark = pytest.mark.integration

# glasspane output -> (extension, options, qemu format name, qemu-img check supported)
OUTPUTS = {
    "qcow2": ("qcow2", {}, "qcow2", True),
    "qcow2-compressed": ("qcow2", {"compress": True}, "qcow2", True),
    "vhd-xenserver": ("vhd", {}, "vpc", False),
    "vhd-qemu": ("vhd", {"vhd_flavour": "qemu"}, "vpc", False),
    "vhd-fixed": ("vhd", {"vhd_type": "fixed"}, "vpc", False),
    "vmdk": ("vmdk", {}, "vmdk", True),
}


def qemu_info(qemu_img: str, path: Path, fmt: str | None = None) -> dict[str, object]:
    # qemu cannot probe a fixed VHD (its only header is the trailing footer): name the format.
    args = ["-f", fmt] if fmt else []
    out = subprocess.run([qemu_img, "info", "--output=json", *args, str(path)], check=True,
                         capture_output=True, text=True).stdout
    return dict(json.loads(out))


@pytest.mark.parametrize("name", OUTPUTS)
def test_qemu_reads_what_glasspane_writes(qemu_img: str, sample_raw: Path, tmp_path: Path,
                                          name: str) -> None:
    ext, options, qemu_fmt, checkable = OUTPUTS[name]
    out = convert_to(sample_raw, tmp_path / f"out.{ext}", **options)
    info = qemu_info(qemu_img, out, qemu_fmt if "fixed" in name else None)
    assert info["format"] == qemu_fmt
    assert int(info["virtual-size"]) >= SAMPLE_SIZE  # type: ignore[call-overload]
    if checkable:
        check = subprocess.run([qemu_img, "check", "-f", qemu_fmt, str(out)],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stdout + check.stderr
        assert "No errors were found" in check.stdout
    compare = subprocess.run([qemu_img, "compare", "-f", "raw", "-F", qemu_fmt,
                              str(sample_raw), str(out)], capture_output=True, text=True)
    assert compare.returncode == 0, compare.stdout + compare.stderr


def test_xenserver_vhd_keeps_the_exact_size(qemu_img: str, tmp_path: Path) -> None:
    """qemu-img's own VHD rounds 64 MiB up to a CHS geometry; XenServer's flavour does not,
    and qemu honours the footer's size for creator 'tap'."""
    raw = tmp_path / "64m.raw"
    raw.write_bytes(b"")
    with open(raw, "r+b") as f:
        f.truncate(64 * MIB)
    ours = convert_to(raw, tmp_path / "x.vhd")
    assert qemu_info(qemu_img, ours)["virtual-size"] == 64 * MIB
    theirs = tmp_path / "q.vhd"
    subprocess.run([qemu_img, "convert", "-O", "vpc", str(raw), str(theirs)], check=True)
    assert qemu_info(qemu_img, theirs)["virtual-size"] != 64 * MIB
    qemu_flavour = convert_to(raw, tmp_path / "qf.vhd", vhd_flavour="qemu")
    assert qemu_info(qemu_img, qemu_flavour)["virtual-size"] == \
        qemu_info(qemu_img, theirs)["virtual-size"]


@pytest.mark.parametrize("name", ["qemu-v3.qcow2", "qemu-v2.qcow2", "qemu-compressed.qcow2",
                                  "qemu-dynamic.vhd", "qemu-fixed.vhd", "qemu-sparse.vmdk",
                                  "qemu-stream.vmdk"])
def test_glasspane_reads_what_qemu_writes(qemu_images: dict[str, Path], name: str) -> None:
    disk = open_disk(str(qemu_images[name]))
    try:
        assert_pattern(disk, SAMPLE_SIZE)
    finally:
        disk.close()
    assert_same(qemu_images["sample.raw"], qemu_images[name])


def test_qcow2_backing_chain(qemu_images: dict[str, Path], tmp_path: Path) -> None:
    overlay = open_disk(str(qemu_images["qemu-overlay.qcow2"]), references=FOLLOW_ANYWHERE)
    try:
        assert [p.path for p in overlay.chain()[1:]] == [str(qemu_images["qemu-v3.qcow2"])]
        for offset, length, byte in OVERLAY_WRITES:
            assert overlay.read(offset, length) == bytes([byte]) * length
        # Outside the overlay's writes, the backing file shows through.
        untouched = 2 * MIB
        base = open_disk(str(qemu_images["qemu-v3.qcow2"]))
        try:
            assert overlay.read(untouched, MIB) == base.read(untouched, MIB)
        finally:
            base.close()
    finally:
        overlay.close()
    flat = convert_to(qemu_images["qemu-overlay.qcow2"], tmp_path / "flat.raw")
    result = subprocess.run(["qemu-img", "compare", "-F", "raw",
                             str(qemu_images["qemu-overlay.qcow2"]), str(flat)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
