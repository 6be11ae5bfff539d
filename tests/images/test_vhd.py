"""VHD specifics: the XenServer flavour as blktap writes it, and differencing disks."""

from __future__ import annotations

import re
import struct
from pathlib import Path

import pytest

from glasspane.errors import FormatError
from glasspane.images import vhd_format as vf
from glasspane.images.detect import open_disk
from glasspane.images.references import FOLLOW_ANYWHERE
from glasspane.images.sample import MIB
from glasspane.images.vhd import VhdImage
from tests.images.helpers import convert_to, footer_of, make_child


def test_xenserver_flavour_fields(sample_raw: Path, tmp_path: Path) -> None:
    out = convert_to(sample_raw, tmp_path / "x.vhd")
    data = out.read_bytes()
    footer = footer_of(out)
    assert footer.creator_app == b"tap\0"
    assert footer.creator_version == vf.XENSERVER_CREATOR_VERSION
    assert footer.creator_os == 0
    assert footer.disk_type == vf.TYPE_DYNAMIC
    # CloudStack reads the size from the original-size field: it must equal the current size,
    # which is the exact input size (rounded up to a sector only).
    assert footer.original_size == footer.current_size == -(-sample_raw.stat().st_size // 512) * 512
    assert data[:512] == data[-512:], "the head copy of the footer must match the tail"
    header = vf.Header.unpack(data[512:1536])
    assert header.block_size == 2 * MIB
    # blktap's batmap sits right after the BAT, with a valid checksum.
    batmap_at = header.table_offset + -(-header.max_table_entries * 4 // 512) * 512
    cookie, map_offset, map_sectors, version, checksum = struct.unpack_from(
        ">8sQIII", data, batmap_at)
    assert cookie == b"tdbatmap" and version == vf.BATMAP_VERSION
    bitmap = data[map_offset:map_offset + map_sectors * 512]
    assert (~sum(bitmap)) & 0xFFFFFFFF == checksum
    disk = open_disk(str(out))
    try:
        assert isinstance(disk, VhdImage)
        for index, sector in enumerate(disk.bat):
            bit = bool(bitmap[index >> 3] & (0x80 >> (index & 7)))
            assert bit == (sector != vf.BAT_UNUSED)
    finally:
        disk.close()


def test_differencing_vhd_reads_through_its_parent(sample_raw: Path, tmp_path: Path) -> None:
    parent = convert_to(sample_raw, tmp_path / "parent.vhd")
    child = tmp_path / "child.vhd"
    make_child(parent, child, block=1, sectors=range(8, 16), byte=0xEE)
    disk = open_disk(str(child), references=FOLLOW_ANYWHERE)
    base = open_disk(str(parent))
    try:
        assert [p.path for p in disk.chain()] == [str(child), str(parent)]
        block1 = 2 * MIB
        assert disk.read(block1 + 8 * 512, 8 * 512) == b"\xee" * 4096
        assert disk.read(block1, 8 * 512) == base.read(block1, 8 * 512)
        assert disk.read(block1 + 16 * 512, MIB) == base.read(block1 + 16 * 512, MIB)
        assert disk.read(0, 2 * MIB) == base.read(0, 2 * MIB)
    finally:
        disk.close()
        base.close()
    # Converting the child flattens the chain.
    flat = convert_to(child, tmp_path / "flat.qcow2")
    flat_disk = open_disk(str(flat))
    try:
        assert flat_disk.read(2 * MIB + 8 * 512, 512) == b"\xee" * 512
        assert flat_disk.parent is None
    finally:
        flat_disk.close()


def test_differencing_vhd_with_a_replaced_parent_is_refused(sample_raw: Path,
                                                             tmp_path: Path) -> None:
    parent = convert_to(sample_raw, tmp_path / "parent.vhd")
    child = tmp_path / "child.vhd"
    make_child(parent, child, block=0, sectors=range(1), byte=1)
    convert_to(sample_raw, parent)  # same name, new UUID
    with pytest.raises(FormatError, match="parent") as refused:
        open_disk(str(child), references=FOLLOW_ANYWHERE)
    # Neither UUID is told: the parent's would let a crafted child name it next time.
    assert not re.search(r"[0-9a-f]{8}-[0-9a-f]{4}-", str(refused.value))


def test_missing_parent_is_named(sample_raw: Path, tmp_path: Path) -> None:
    parent = convert_to(sample_raw, tmp_path / "parent.vhd")
    child = tmp_path / "child.vhd"
    make_child(parent, child, block=0, sectors=range(1), byte=1)
    parent.unlink()
    with pytest.raises(FormatError, match=r"parent not found \(looked for: .*parent\.vhd"):
        open_disk(str(child), references=FOLLOW_ANYWHERE)
