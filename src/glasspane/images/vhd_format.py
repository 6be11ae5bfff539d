"""On-disk structures of the VHD format (Microsoft's VHD spec; blktap's libvhd for the XenServer
specifics: creator "tap", the batmap).  Pure data: no file I/O here."""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass, replace

SECTOR = 512
FOOTER_COOKIE = b"conectix"
HEADER_COOKIE = b"cxsparse"
BATMAP_COOKIE = b"tdbatmap"
NO_DATA_OFFSET = 0xFFFFFFFFFFFFFFFF
BAT_UNUSED = 0xFFFFFFFF
TYPE_FIXED, TYPE_DYNAMIC, TYPE_DIFF = 2, 3, 4
TYPE_NAMES = {TYPE_FIXED: "fixed", TYPE_DYNAMIC: "dynamic", TYPE_DIFF: "differencing"}
DEFAULT_BLOCK_SIZE = 2 << 20
VHD_EPOCH = 946684800  # 2000-01-01T00:00:00Z
XENSERVER_CREATOR_VERSION = 0x00010003  # blktap VHD_CURRENT_VERSION (1.3)
BATMAP_VERSION = 0x00010002

_FOOTER = struct.Struct(">8sIIQI4sIIQQIII16sBB426s")
_HEADER = struct.Struct(">8sQQIIII16sII512s192s256s")
_LOCATOR = struct.Struct(">4sIIIQ")
_BATMAP_HEADER = struct.Struct(">8sQIII")
assert _FOOTER.size == 512 and _HEADER.size == 1024 and _LOCATOR.size == 24


def vhd_checksum(blob: bytes) -> int:
    """One's complement of the byte sum (the checksum field must be zero in `blob`)."""
    return (~sum(blob)) & 0xFFFFFFFF


def chs_geometry(size: int) -> tuple[int, int, int]:
    """(cylinders, heads, sectors per track) by the VHD specification's algorithm."""
    secs = max(1, -(-size // SECTOR))
    secs = min(secs, 65535 * 16 * 255)
    if secs >= 65535 * 16 * 63:
        spt, heads = 255, 16
        cth = secs // spt
    else:
        spt = 17
        cth = secs // spt
        heads = max(4, (cth + 1023) // 1024)
        if cth >= heads * 1024 or heads > 16:
            spt, heads = 31, 16
            cth = secs // spt
        if cth >= heads * 1024:
            spt, heads = 63, 16
            cth = secs // spt
    return cth // heads, heads, spt


def geometry_field(cyl: int, heads: int, spt: int) -> int:
    return (cyl << 16) | (heads << 8) | spt


def vhd_timestamp(now: float | None = None) -> int:
    return max(0, int(now if now is not None else time.time()) - VHD_EPOCH) & 0xFFFFFFFF


@dataclass(frozen=True)
class Footer:
    cookie: bytes
    features: int
    version: int
    data_offset: int
    timestamp: int
    creator_app: bytes
    creator_version: int
    creator_os: int
    original_size: int
    current_size: int
    geometry: int
    disk_type: int
    checksum: int
    uuid: bytes
    saved_state: int
    hidden: int

    @classmethod
    def unpack(cls, blob: bytes) -> Footer:
        f = _FOOTER.unpack(blob)
        return cls(f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], f[8], f[9], f[10], f[11],
                   f[12], f[13], f[14], f[15])

    def pack(self) -> bytes:
        raw = _FOOTER.pack(self.cookie, self.features, self.version, self.data_offset,
                           self.timestamp, self.creator_app, self.creator_version,
                           self.creator_os, self.original_size, self.current_size,
                           self.geometry, self.disk_type, 0, self.uuid, self.saved_state,
                           self.hidden, bytes(426))
        return _FOOTER.pack(self.cookie, self.features, self.version, self.data_offset,
                            self.timestamp, self.creator_app, self.creator_version,
                            self.creator_os, self.original_size, self.current_size,
                            self.geometry, self.disk_type, vhd_checksum(raw), self.uuid,
                            self.saved_state, self.hidden, bytes(426))

    def computed_checksum(self, blob: bytes) -> int:
        return vhd_checksum(blob[:64] + b"\0\0\0\0" + blob[68:])

    def with_checksum(self) -> Footer:
        return replace(self, checksum=Footer.unpack(self.pack()).checksum)


@dataclass(frozen=True)
class Locator:
    code: bytes
    data_space: int
    data_length: int
    data_offset: int


@dataclass(frozen=True)
class Header:
    cookie: bytes
    data_offset: int
    table_offset: int
    version: int
    max_table_entries: int
    block_size: int
    checksum: int
    parent_uuid: bytes
    parent_timestamp: int
    parent_name: str
    locators: tuple[Locator, ...]

    @classmethod
    def unpack(cls, blob: bytes) -> Header:
        (cookie, data_offset, table_offset, version, entries, block_size, checksum,
         parent_uuid, parent_ts, _res, name, locs, _res2) = _HEADER.unpack(blob)
        locators = []
        for i in range(8):
            code, space, length, _r, offset = _LOCATOR.unpack_from(locs, i * 24)
            locators.append(Locator(code, space, length, offset))
        parent_name = name.decode("utf-16-be", errors="replace").split("\0", 1)[0]
        return cls(cookie, data_offset, table_offset, version, entries, block_size, checksum,
                   parent_uuid, parent_ts, parent_name, tuple(locators))

    @staticmethod
    def computed_checksum(blob: bytes) -> int:
        return vhd_checksum(blob[:36] + b"\0\0\0\0" + blob[40:])

    def pack(self) -> bytes:
        locs = b"".join(_LOCATOR.pack(loc.code, loc.data_space, loc.data_length, 0,
                                      loc.data_offset) for loc in self.locators)
        locs = locs.ljust(192, b"\0")
        name = self.parent_name.encode("utf-16-be")[:512].ljust(512, b"\0")

        def raw(checksum: int) -> bytes:
            return _HEADER.pack(self.cookie, self.data_offset, self.table_offset, self.version,
                                self.max_table_entries, self.block_size, checksum,
                                self.parent_uuid, self.parent_timestamp, 0, name, locs,
                                bytes(256))
        return raw(vhd_checksum(raw(0)))


def bitmap_bytes(block_size: int) -> int:
    """Size of a block's sector bitmap, padded to whole sectors."""
    return max(1, -(-(block_size // SECTOR) // 8 // SECTOR)) * SECTOR


def pack_batmap_header(batmap_offset: int, map_sectors: int, checksum: int) -> bytes:
    return _BATMAP_HEADER.pack(BATMAP_COOKIE, batmap_offset, map_sectors, BATMAP_VERSION,
                               checksum).ljust(SECTOR, b"\0")
