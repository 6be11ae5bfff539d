"""XVA: read as XAPI's importer reads it, written as XAPI's importer needs it, whole VMs kept
across XVA <-> OVA."""

from __future__ import annotations

import hashlib
import re
import tarfile
from pathlib import Path

import pytest

from glasspane.errors import ChecksumError, FormatError
from glasspane.images.base import ByteSink
from glasspane.images.check import check_image
from glasspane.images.convert import convert
from glasspane.images.detect import open_disk, open_image
from glasspane.images.sample import MIB
from glasspane.images.vm import VmImage, VmSettings
from glasspane.images.xva import write_xva
from tests.images.helpers import assert_same, convert_to
from tests.images.xva_builder import build_xva


def open_vm(path: Path) -> VmImage:
    vm = open_image(str(path))
    assert isinstance(vm, VmImage)
    return vm


@pytest.fixture
def two_disk_xva(sample_raw: Path, tmp_path: Path) -> Path:
    second = tmp_path / "second.raw"
    second.write_bytes(b"\x5a" * (3 * MIB + 4096))
    path = tmp_path / "two.xva"
    a, b = open_disk(str(sample_raw)), open_disk(str(second))
    with open(path, "wb") as f:
        write_xva(ByteSink(f.fileno(), str(path)), VmSettings("web-01", 4, 3072, ["root", "data"]),
                  [(a.virtual_size, a.extents()), (b.virtual_size, b.extents())], lambda n: None)
    a.close()
    b.close()
    return path


def test_multi_disk_xva_keeps_every_disk(two_disk_xva: Path, sample_raw: Path) -> None:
    vm = open_vm(two_disk_xva)
    try:
        assert (vm.name, vm.vcpus, vm.memory_mib) == ("web-01", 4, 3072)
        assert [d.name for d in vm.disks] == ["root", "data"]
        assert vm.disks[1].image.read(0, 3 * MIB + 4096) == b"\x5a" * (3 * MIB + 4096)
    finally:
        vm.close()
    assert_same(sample_raw, two_disk_xva, disk=0)


def test_layout_is_what_xapi_imports(two_disk_xva: Path) -> None:
    with tarfile.open(two_disk_xva) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names[0] == "ova.xml"
    assert all(m.isfile() for m in members), "XAPI's importer breaks on directory entries"
    chunks = [n for n in names[1:] if not n.endswith(".checksum")]
    assert chunks == sorted(chunks), "VDIs and chunks must stream in string order"
    for i, name in enumerate(names[1:]):
        if i % 2 == 0:
            assert names[i + 2] == name + ".checksum", "each chunk is followed by its checksum"
    # The first and the last chunk of each disk are always present, even when zero.
    disk1 = [n for n in chunks if n.startswith("Ref:101/")]
    assert disk1 == ["Ref:101/00000000", "Ref:101/00000001", "Ref:101/00000002",
                     "Ref:101/00000003"]
    with tarfile.open(two_disk_xva) as tar:
        digest = tar.extractfile("Ref:100/00000000.checksum").read()  # type: ignore[union-attr]
        data = tar.extractfile("Ref:100/00000000").read()  # type: ignore[union-attr]
    assert re.fullmatch(rb"[0-9a-f]{40}", digest)
    assert digest == hashlib.sha1(data).hexdigest().encode()


def test_xxhash_checksums(sample_raw: Path, tmp_path: Path) -> None:
    out = convert_to(sample_raw, tmp_path / "x.xva", xva_checksum="xxhash")
    with tarfile.open(out) as tar:
        sums = [m.name for m in tar.getmembers() if m.name.endswith(".xxhash")]
        first = tar.extractfile(sums[0]).read()  # type: ignore[union-attr]
    assert sums and re.fullmatch(rb"[0-9A-F]{16}", first)
    assert_same(sample_raw, out)


def test_xva_to_ova_and_back_keeps_the_vm(two_disk_xva: Path, tmp_path: Path) -> None:
    ova = tmp_path / "vm.ova"
    convert(str(two_disk_xva), str(ova))
    back = tmp_path / "back.xva"
    convert(str(ova), str(back))
    for path in (ova, back):
        vm = open_vm(path)
        try:
            assert (vm.name, vm.vcpus, vm.memory_mib, len(vm.disks)) == ("web-01", 4, 3072, 2)
        finally:
            vm.close()
        assert_same(two_disk_xva, path)


def test_one_disk_of_a_vm(two_disk_xva: Path, tmp_path: Path) -> None:
    out = tmp_path / "data.qcow2"
    convert(str(two_disk_xva), str(out), disk=1)
    disk = open_disk(str(out))
    try:
        assert disk.read(0, 16) == b"\x5a" * 16
    finally:
        disk.close()
    many = convert(str(two_disk_xva), str(tmp_path / "all.raw"))
    assert [Path(o.path).name for o in many] == ["all-disk0.raw", "all-disk1.raw"]


def test_reads_a_hand_built_export_like_the_importer(tmp_path: Path) -> None:
    """Skipped chunk numbers are zeros of the first chunk's length; an empty chunk (XAPI's
    keep-alive) advances nothing, so the next chunk lands where the importer puts it."""
    a, b, c = b"\x01" * MIB, b"\x02" * MIB, b"\x03" * 4096
    size = 6 * MIB + 4096
    path = tmp_path / "hand.xva"
    build_xva(path, [(size, [(0, a), (3, b), (4, b""), (5, b), (7, c)])])
    disk = open_vm(path)
    try:
        img = disk.disks[0].image
        assert img.read(0, MIB) == a
        assert img.read(MIB, 2 * MIB) == bytes(2 * MIB)
        assert img.read(3 * MIB, MIB) == b
        assert img.read(4 * MIB, MIB) == b       # chunk 5 follows the empty chunk 4
        assert img.read(5 * MIB, MIB) == bytes(MIB)  # chunk 6 skipped
        assert img.read(6 * MIB, 4096) == c
    finally:
        disk.close()


def test_corrupt_chunk_is_named_and_leaves_no_output(tmp_path: Path) -> None:
    path = tmp_path / "bad.xva"
    build_xva(path, [(2 * MIB, [(0, b"\x01" * MIB), (1, b"\x02" * MIB)])])
    data = bytearray(path.read_bytes())
    at = data.index(b"\x02" * 64)
    data[at + 10] ^= 0xFF
    path.write_bytes(bytes(data))
    out = tmp_path / "out.raw"
    with pytest.raises(ChecksumError, match=r"Ref:100/00000001") as info:
        convert(str(path), str(out))
    assert info.value.offset is not None
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.xva"], "no temporary left behind"
    report = check_image(str(path))
    assert not report.ok
    assert "Ref:100/00000001" in str(report.problems[0])


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<value>&lol2;</value>"""
EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE v [<!ENTITY x SYSTEM "file:///etc/passwd">]><value>&x;</value>"""


@pytest.mark.parametrize("xml", [BILLION_LAUGHS, EXTERNAL_ENTITY])
def test_hostile_ova_xml_is_refused(tmp_path: Path, xml: bytes) -> None:
    path = tmp_path / "evil.xva"
    build_xva(path, [(MIB, [(0, b"\x01" * MIB)])], ova_xml=xml)
    with pytest.raises(FormatError, match="forbidden XML"):
        open_image(str(path))


def test_path_traversal_member_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.xva"
    build_xva(path, [(MIB, [(0, b"\x01" * MIB)])], extra_members=[("../../etc/cron.d/x", b"")])
    with pytest.raises(FormatError, match="escapes the archive"):
        open_image(str(path))


def test_chunk_past_the_vdi_size_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "long.xva"
    build_xva(path, [(MIB, [(0, b"\x01" * MIB), (1, b"\x01" * MIB)])])
    with pytest.raises(FormatError, match="past the VDI's virtual size"):
        open_image(str(path))
