"""On-disk structures of VMware's hosted sparse extents (VMDK 1.1/5.0 spec): the sparse header,
stream markers and the text descriptor.  Pure data: no file I/O."""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass, field

MAGIC = 0x564D444B  # "KDMV" on disk
SECTOR = 512
GD_AT_END = 0xFFFFFFFFFFFFFFFF
FLAG_NEWLINE_TEST = 1 << 0
FLAG_REDUNDANT_GT = 1 << 1
FLAG_ZERO_GTE = 1 << 2
FLAG_COMPRESSED = 1 << 16
FLAG_MARKERS = 1 << 17
COMPRESS_DEFLATE = 1
MARKER_EOS, MARKER_GT, MARKER_GD, MARKER_FOOTER = 0, 1, 2, 3
MAX_DESCRIPTOR_BYTES = 1 << 20

_HEADER = struct.Struct("<IIIQQQQIQQQBccccH433s")
assert _HEADER.size == SECTOR


@dataclass
class SparseHeader:
    version: int
    flags: int
    capacity: int        # sectors
    grain_size: int      # sectors
    descriptor_offset: int
    descriptor_size: int
    gtes_per_gt: int
    rgd_offset: int
    gd_offset: int
    overhead: int
    unclean_shutdown: int = 0
    compress_algorithm: int = 0

    @classmethod
    def unpack(cls, blob: bytes) -> SparseHeader:
        f = _HEADER.unpack(blob[:SECTOR])
        return cls(f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11], f[16])

    @staticmethod
    def magic_of(blob: bytes) -> int:
        return int(struct.unpack_from("<I", blob)[0])

    def pack(self) -> bytes:
        return _HEADER.pack(MAGIC, self.version, self.flags, self.capacity, self.grain_size,
                            self.descriptor_offset, self.descriptor_size, self.gtes_per_gt,
                            self.rgd_offset, self.gd_offset, self.overhead,
                            self.unclean_shutdown, b"\n", b" ", b"\r", b"\n",
                            self.compress_algorithm, bytes(433))


def grain_marker(lba: int, size: int) -> bytes:
    return struct.pack("<QI", lba, size)


def meta_marker(sectors: int, kind: int) -> bytes:
    return struct.pack("<QII", sectors, 0, kind).ljust(SECTOR, b"\0")


def parse_grain_marker(blob: bytes) -> tuple[int, int]:
    """(LBA, compressed size) of a grain marker."""
    lba, size = struct.unpack_from("<QI", blob)
    return lba, size


def parse_marker(blob: bytes) -> tuple[int, int, int]:
    """(value, size, type) of a marker; type is meaningful only when size is 0."""
    value, size, kind = struct.unpack_from("<QII", blob)
    return value, size, kind


_LINE_KV = re.compile(r'^\s*([A-Za-z0-9_.]+)\s*=\s*"?([^"]*)"?\s*$')
_LINE_EXTENT = re.compile(r'^\s*(RW|RDONLY|NOACCESS)\s+(\d+)\s+(\w+)(?:\s+"([^"]*)")?(?:\s+(\d+))?'
                          r'\s*$')


@dataclass
class Descriptor:
    values: dict[str, str] = field(default_factory=dict)
    extents: list[tuple[str, int, str, str]] = field(default_factory=list)

    @property
    def create_type(self) -> str:
        return self.values.get("createType", "")


class DescriptorError(ValueError):
    def __init__(self, line: int, text: str) -> None:
        super().__init__(f"line {line}: cannot parse {text[:60]!r}")
        self.line = line


def parse_descriptor(text: str) -> Descriptor:
    """Parse a descriptor; raises DescriptorError with the line number on garbage."""
    desc = Descriptor()
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if any(ord(c) < 32 and c != "\t" for c in stripped):
            raise DescriptorError(number, stripped)
        m = _LINE_EXTENT.match(stripped)
        if m:
            desc.extents.append((m.group(1), int(m.group(2)), m.group(3), m.group(4) or ""))
            continue
        m = _LINE_KV.match(stripped)
        if not m:
            raise DescriptorError(number, stripped)
        desc.values[m.group(1)] = m.group(2)
    version = desc.values.get("version", "1")
    if not version.isdigit():
        raise DescriptorError(0, f"version={version}")
    return desc


def make_descriptor(capacity_sectors: int, extent_name: str, cid: int,
                    adapter: str = "lsilogic") -> str:
    cylinders = min(65535, capacity_sectors // (255 * 63))
    return "\n".join([
        "# Disk DescriptorFile",
        "version=1",
        f"CID={cid:08x}",
        "parentCID=ffffffff",
        'createType="streamOptimized"',
        "",
        "# Extent description",
        f'RW {capacity_sectors} SPARSE "{extent_name}"',
        "",
        "# The Disk Data Base",
        "#DDB",
        "",
        f'ddb.adapterType = "{adapter}"',
        f'ddb.geometry.cylinders = "{cylinders}"',
        'ddb.geometry.heads = "255"',
        'ddb.geometry.sectors = "63"',
        'ddb.virtualHWVersion = "4"',
        "",
    ])
