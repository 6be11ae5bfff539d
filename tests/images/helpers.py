"""Test helpers: expected content of the sample pattern, and conversions in one call."""

from __future__ import annotations

import uuid
from pathlib import Path

from glasspane.images import vhd_format as vf
from glasspane.images.base import DiskImage, WriteOptions
from glasspane.images.compare import compare_images
from glasspane.images.convert import convert
from glasspane.images.references import FOLLOW_ANYWHERE
from glasspane.images.sample import MIB, expected_mib


def convert_to(src: Path, dst: Path, **options: object) -> Path:
    convert(str(src), str(dst), options=WriteOptions(**options),  # type: ignore[arg-type]
            overwrite=True, references=FOLLOW_ANYWHERE)
    return dst


def assert_same(a: Path, b: Path, disk: int | None = None) -> None:
    results = compare_images(str(a), str(b), disk, FOLLOW_ANYWHERE)
    assert results, "nothing compared"
    for r in results:
        assert r.identical, f"{a} vs {b}: {r.describe()}"


def assert_pattern(image: DiskImage, size: int) -> None:
    """Spot-check the sample pattern at every MiB of `image`."""
    for i in range(-(-size // MIB)):
        length = min(MIB, size - i * MIB)
        assert image.read(i * MIB, length) == expected_mib(i, length), f"MiB {i} differs"


def footer_of(path: Path) -> vf.Footer:
    data = path.read_bytes()
    return vf.Footer.unpack(data[-512:])


def make_child(parent: Path, child: Path, block: int, sectors: range, byte: int, *,
               locator: str | None = None, parent_name: str | None = None) -> None:
    """A differencing VHD over `parent` (its UUID and size; by hand, per the VHD spec: qemu-img
    makes none) that overrides `sectors` of `block` with `byte`.  Its MacX parent locator
    says `file://LOCATOR` (default: ./PARENT'S NAME), its header's parent name `parent_name`
    (default: the parent's name)."""
    pfooter = footer_of(parent)
    size = pfooter.current_size
    bs = 2 * MIB
    entries = -(-size // bs)
    table_offset = 1536
    bat_bytes = -(-entries * 4 // 512) * 512
    locator_at = table_offset + bat_bytes
    where = ("file://" + (locator if locator is not None else f"./{parent.name}")).encode()
    locator_sectors = -(-len(where) // 512)
    block_at = locator_at + locator_sectors * 512
    bitmap = bytearray(512)
    for s in sectors:
        bitmap[s >> 3] |= 0x80 >> (s & 7)
    data = bytearray(bs)
    for s in sectors:
        data[s * 512:(s + 1) * 512] = bytes([byte]) * 512
    bat = [vf.BAT_UNUSED] * entries
    bat[block] = block_at // 512
    footer = vf.Footer(vf.FOOTER_COOKIE, 2, 0x00010000, 512, 0, b"tap\0",
                       vf.XENSERVER_CREATOR_VERSION, 0, size, size, pfooter.geometry,
                       vf.TYPE_DIFF, 0, uuid.uuid4().bytes, 0, 0).with_checksum()
    header = vf.Header(vf.HEADER_COOKIE, vf.NO_DATA_OFFSET, table_offset, 0x00010000, entries,
                       bs, 0, pfooter.uuid, 0,
                       parent.name if parent_name is None else parent_name,
                       (vf.Locator(b"MacX", locator_sectors, len(where), locator_at),))
    with open(child, "wb") as f:
        f.write(footer.pack())
        f.write(header.pack())
        f.write(b"".join(e.to_bytes(4, "big") for e in bat).ljust(bat_bytes, b"\xff"))
        f.write(where.ljust(locator_sectors * 512, b"\0"))
        f.write(bitmap)
        f.write(data)
        f.write(footer.pack())


def qemu_overlay(path: Path, backing: str, backing_format: str = "raw",
                 size: str = "1M") -> Path:
    """A qcow2 made by qemu-img naming `backing` as its backing file, as written (`-u`: the
    file need not exist, nor be readable, where it is made)."""
    import subprocess
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-u", "-b", backing,
                    "-F", backing_format, str(path), size], check=True)
    return path


def ova_holding(path: Path, member: str, data: bytes, capacity: int) -> Path:
    """An OVA (descriptor, then the disk file `member` holding `data`) written with tarfile."""
    import io
    import tarfile

    from glasspane.images import ovf
    descriptor = ovf.build_ovf(ovf.OvfDescriptor("appliance", 1, 256,
                                                 [ovf.OvfDisk("vmdisk1", member, capacity)]))
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in (("appliance.ovf", descriptor), (member, data)):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return path
