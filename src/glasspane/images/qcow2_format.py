"""On-disk structures of qcow2 (qemu's docs/interop/qcow2.txt).  Pure data: no file I/O."""

from __future__ import annotations

import struct
from dataclasses import dataclass

MAGIC = b"QFI\xfb"
_V2 = struct.Struct(">4sIQIIQIIQQIIQ")
_V3 = struct.Struct(">QQQII")
V2_HEADER_SIZE = _V2.size   # 72
V3_HEADER_SIZE = V2_HEADER_SIZE + _V3.size  # 104

EXT_END = 0
EXT_BACKING_FORMAT = 0xE2792ACA
EXT_FEATURE_NAMES = 0x6803F857

INCOMPAT_DIRTY = 1 << 0
INCOMPAT_CORRUPT = 1 << 1
INCOMPAT_DATA_FILE = 1 << 2
INCOMPAT_COMPRESSION = 1 << 3
INCOMPAT_EXTENDED_L2 = 1 << 4
KNOWN_INCOMPAT = INCOMPAT_DIRTY | INCOMPAT_CORRUPT

OFLAG_COPIED = 1 << 63
OFLAG_COMPRESSED = 1 << 62
OFLAG_ZERO = 1
OFFSET_MASK = 0x00FFFFFFFFFFFE00


@dataclass
class Qcow2Header:
    version: int
    backing_file_offset: int
    backing_file_size: int
    cluster_bits: int
    size: int
    crypt_method: int
    l1_size: int
    l1_table_offset: int
    refcount_table_offset: int
    refcount_table_clusters: int
    nb_snapshots: int
    snapshots_offset: int
    incompatible_features: int = 0
    compatible_features: int = 0
    autoclear_features: int = 0
    refcount_order: int = 4
    header_length: int = V2_HEADER_SIZE
    compression_type: int = 0

    @property
    def cluster_size(self) -> int:
        return 1 << self.cluster_bits

    @classmethod
    def unpack(cls, blob: bytes) -> Qcow2Header:
        f = _V2.unpack_from(blob)
        hdr = cls(*f[1:])
        if hdr.version >= 3:
            (hdr.incompatible_features, hdr.compatible_features, hdr.autoclear_features,
             hdr.refcount_order, hdr.header_length) = _V3.unpack_from(blob, V2_HEADER_SIZE)
            if hdr.header_length > V3_HEADER_SIZE and len(blob) > V3_HEADER_SIZE:
                hdr.compression_type = blob[V3_HEADER_SIZE]
        return hdr

    def pack(self) -> bytes:
        out = _V2.pack(MAGIC, self.version, self.backing_file_offset, self.backing_file_size,
                       self.cluster_bits, self.size, self.crypt_method, self.l1_size,
                       self.l1_table_offset, self.refcount_table_offset,
                       self.refcount_table_clusters, self.nb_snapshots, self.snapshots_offset)
        if self.version >= 3:
            out += _V3.pack(self.incompatible_features, self.compatible_features,
                            self.autoclear_features, self.refcount_order, self.header_length)
        return out


def compressed_location(entry: int, cluster_bits: int) -> tuple[int, int]:
    """(host offset, byte length) of a compressed cluster descriptor."""
    x = 62 - (cluster_bits - 8)
    offset = entry & ((1 << x) - 1)
    sectors = ((entry >> x) & ((1 << (62 - x)) - 1)) + 1
    return offset, sectors * 512 - (offset & 511)


def compressed_entry(offset: int, length: int, cluster_bits: int) -> int:
    x = 62 - (cluster_bits - 8)
    extra_sectors = (offset + length - 1) // 512 - offset // 512
    return OFLAG_COMPRESSED | (extra_sectors << x) | offset
