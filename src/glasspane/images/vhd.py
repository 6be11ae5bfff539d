"""VHD reader (fixed, dynamic, differencing with its parent chain) and writer (dynamic or fixed,
in the XenServer flavour that blktap's vhd-util writes, or the qemu/Virtual PC flavour)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterable, Iterator
from typing import Any

from glasspane.errors import ChecksumError, FormatError, UnsupportedFeature
from glasspane.images import vhd_format as vf
from glasspane.images.base import DiskImage, DiskWriter, Problem, ProgressFn, check_virtual_size
from glasspane.images.extents import Extent, data_runs, iter_blocks, tracked
from glasspane.images.references import STANDALONE, References
from glasspane.images.source import ByteSource
from glasspane.images.tables import pack_table, read_table

MAX_CHAIN_DEPTH = 64
HOLE_GRANULARITY = 64 << 10


def read_footer(src: ByteSource) -> vf.Footer:
    if src.size < vf.SECTOR:
        raise FormatError("file is smaller than a VHD footer", path=src.path,
                          structure="VHD footer", offset=0)
    at = src.size - vf.SECTOR
    blob = src.pread(at, vf.SECTOR, "VHD footer")
    footer = vf.Footer.unpack(blob)
    if footer.cookie != vf.FOOTER_COOKIE:
        raise FormatError("bad cookie, expected 'conectix'", path=src.path,
                          structure="VHD footer", offset=at, hint="not a VHD, or truncated")
    if footer.computed_checksum(blob) != footer.checksum:
        raise ChecksumError(
            f"checksum 0x{footer.checksum:08x} does not match computed "
            f"0x{footer.computed_checksum(blob):08x}", path=src.path, structure="VHD footer",
            offset=at)
    if footer.disk_type not in vf.TYPE_NAMES:
        raise FormatError(f"unknown disk type {footer.disk_type}", path=src.path,
                          structure="VHD footer", offset=at + 60)
    check_virtual_size(footer.current_size, src.path, "VHD footer", at + 48)
    return footer


class VhdImage(DiskImage):
    format_name = "vhd"

    def __init__(self, source: ByteSource, depth: int = 0,
                 references: References = STANDALONE) -> None:
        self.footer = read_footer(source)
        super().__init__(source, self.footer.current_size)
        self.header: vf.Header | None = None
        self.bat = read_table(b"", 4, "big")
        if self.footer.disk_type == vf.TYPE_FIXED:
            if self.virtual_size > source.size - vf.SECTOR:
                raise FormatError(
                    f"fixed VHD declares {self.virtual_size} bytes but holds only "
                    f"{source.size - vf.SECTOR}", path=self.path, structure="VHD data",
                    offset=source.size - vf.SECTOR)
            return
        self._read_dynamic_header()
        if self.footer.disk_type == vf.TYPE_DIFF:
            if depth >= MAX_CHAIN_DEPTH:
                raise FormatError(f"parent chain deeper than {MAX_CHAIN_DEPTH}", path=self.path,
                                  structure="VHD parent locator")
            parent = references.open(self.source, self._parent_names(), "parent",
                                     "VHD parent locator")
            self.parent = VhdImage(parent, depth + 1, references)
            if self.parent.footer.uuid != self.header_or_fail().parent_uuid:
                # Neither UUID is shown: the parent's would let the next upload forge it.
                raise FormatError(
                    "the parent found is not the one the header names (its UUID differs)",
                    path=self.path, structure="VHD header parent_uuid", offset=None,
                    hint="the parent was replaced or modified")

    def header_or_fail(self) -> vf.Header:
        assert self.header is not None
        return self.header

    def _read_dynamic_header(self) -> None:
        src, at = self.source, self.footer.data_offset
        blob = src.pread(at, 1024, "VHD dynamic header")
        hdr = vf.Header.unpack(blob)
        if hdr.cookie != vf.HEADER_COOKIE:
            raise FormatError("bad cookie, expected 'cxsparse'", path=src.path,
                              structure="VHD dynamic header", offset=at)
        if vf.Header.computed_checksum(blob) != hdr.checksum:
            raise ChecksumError("header checksum mismatch", path=src.path,
                                structure="VHD dynamic header", offset=at)
        bs = hdr.block_size
        if bs < vf.SECTOR or bs > (256 << 20) or bs & (bs - 1):
            raise FormatError(f"block size {bs} is not a power of two between 512 B and 256 MiB",
                              path=src.path, structure="VHD dynamic header", offset=at + 28)
        if hdr.max_table_entries * bs < self.virtual_size:
            raise FormatError(
                f"BAT has {hdr.max_table_entries} entries of {bs} bytes, too few for "
                f"{self.virtual_size} bytes", path=src.path, structure="VHD dynamic header",
                offset=at + 24)
        bat_bytes = hdr.max_table_entries * 4
        if hdr.table_offset + bat_bytes > src.size:
            raise FormatError(f"BAT of {bat_bytes} bytes extends past the end of the file",
                              path=src.path, structure="VHD BAT", offset=hdr.table_offset)
        raw = src.pread(hdr.table_offset, bat_bytes, "VHD BAT")
        self.bat = read_table(raw, 4, "big")
        self.header = hdr
        self._bitmap_size = vf.bitmap_bytes(bs)
        self._validate_bat()

    def _validate_bat(self) -> None:
        hdr = self.header_or_fail()
        meta_end = max(hdr.table_offset + hdr.max_table_entries * 4,
                       self.footer.data_offset + 1024)
        limit = self.source.size - vf.SECTOR
        span = self._bitmap_size + hdr.block_size
        for index, sector in enumerate(self.bat):
            if sector == vf.BAT_UNUSED:
                continue
            start = sector * vf.SECTOR
            if start < meta_end or start + span > limit:
                raise FormatError(
                    f"block {index} points at offset {start}, outside the data area "
                    f"[{meta_end}, {limit})", path=self.path, structure=f"VHD BAT entry {index}",
                    offset=hdr.table_offset + index * 4)

    def _parent_names(self) -> list[str]:
        """The parent's names from the locators (absolute or relative, as written), then the
        header's parent name: for the references policy to resolve."""
        hdr = self.header_or_fail()
        names: list[str] = []
        for loc in hdr.locators:
            if loc.code not in (b"MacX", b"W2ku", b"W2ru") or not loc.data_length:
                continue
            if loc.data_length > 65536:
                continue
            raw = self.source.pread(loc.data_offset, loc.data_length, "VHD parent locator")
            if loc.code == b"MacX":
                name = raw.decode("utf-8", errors="replace").rstrip("\0")
                name = name.removeprefix("file://")
            else:
                name = raw.decode("utf-16-le", errors="replace").rstrip("\0").replace("\\", "/")
            names.append(name)
        if hdr.parent_name:
            names.append(os.path.basename(hdr.parent_name.replace("\\", "/")))
        return [n for n in names if n]

    def _extents(self, start: int, end: int) -> Iterator[Extent]:
        if self.footer.disk_type == vf.TYPE_FIXED:
            yield from _read_fixed(self.source, start, end)
            return
        bs = self.header_or_fail().block_size
        pos = start
        while pos < end:
            index = pos // bs
            bend = min(end, (index + 1) * bs)
            sector = self.bat[index]
            if sector == vf.BAT_UNUSED:
                # Merge runs of unallocated blocks into one extent.
                while bend < end and self.bat[bend // bs] == vf.BAT_UNUSED:
                    bend = min(end, bend + bs)
                yield from self._absent(pos, bend)
            else:
                yield from self._block_extents(index, sector * vf.SECTOR, pos, bend)
            pos = bend

    def _absent(self, start: int, end: int) -> Iterator[Extent]:
        if self.parent is not None:
            yield from self.parent.extents(start, end)
        else:
            yield Extent(start, end - start, None)

    def _block_extents(self, index: int, at: int, start: int, end: int) -> Iterator[Extent]:
        bs = self.header_or_fail().block_size
        bitmap = self.source.pread(at, self._bitmap_size, f"VHD block {index} bitmap")
        data_at = at + self._bitmap_size - index * bs
        first, last = (start - index * bs) // vf.SECTOR, (end - 1 - index * bs) // vf.SECTOR
        for run_start, run_end, present in _bitmap_runs(bitmap, first, last + 1):
            a = max(start, index * bs + run_start * vf.SECTOR)
            b = min(end, index * bs + run_end * vf.SECTOR)
            if present:
                yield Extent(a, b - a, self.source.pread(data_at + a, b - a,
                                                         f"VHD block {index} data"))
            else:
                yield from self._absent(a, b)

    def allocated_bytes(self) -> int:
        if self.header is None:
            return self.virtual_size
        return sum(1 for s in self.bat if s != vf.BAT_UNUSED) * self.header.block_size

    def details(self) -> dict[str, Any]:
        f = self.footer
        out: dict[str, Any] = {
            "vhd_type": vf.TYPE_NAMES[f.disk_type],
            "creator": f.creator_app.rstrip(b"\0").decode("latin-1"),
            "creator_version": f"{f.creator_version >> 16}.{f.creator_version & 0xFFFF}",
            "original_size": f.original_size,
            "geometry": "/".join(str(x) for x in (f.geometry >> 16, (f.geometry >> 8) & 0xFF,
                                                   f.geometry & 0xFF)),
            "uuid": str(uuid.UUID(bytes=f.uuid)),
        }
        if self.header is not None:
            out["block_size"] = self.header.block_size
        return out

    def check(self) -> list[Problem]:
        problems = super().check()
        f = self.footer
        if self.header is not None:
            head = self.source.pread(0, vf.SECTOR, "VHD footer copy")
            copy = vf.Footer.unpack(head)
            if copy.cookie != vf.FOOTER_COOKIE or copy.computed_checksum(head) != copy.checksum:
                problems.append(Problem("VHD footer copy", "missing or damaged", 0))
            elif copy.uuid != f.uuid:
                problems.append(Problem("VHD footer copy", "differs from the trailing footer", 0))
            seen: dict[int, int] = {}
            for index, sector in enumerate(self.bat):
                if sector == vf.BAT_UNUSED:
                    continue
                if sector in seen:
                    problems.append(Problem(f"VHD BAT entry {index}",
                                            f"same block data as entry {seen[sector]}",
                                            self.header.table_offset + index * 4))
                seen[sector] = index
        return problems


def _bitmap_runs(bitmap: bytes, first: int, stop: int) -> Iterator[tuple[int, int, bool]]:
    """Runs of equal bits (MSB first) in sector numbers [first, stop)."""
    a, b = first // 8, -(-stop // 8)
    chunk = bitmap[a:b]
    if chunk == b"\xff" * len(chunk):
        yield first, stop, True
        return
    if chunk == bytes(len(chunk)):
        yield first, stop, False
        return
    run_start, state = first, None
    for s in range(first, stop):
        bit = bool(bitmap[s >> 3] & (0x80 >> (s & 7)))
        if state is None:
            state = bit
        elif bit != state:
            yield run_start, s, state
            run_start, state = s, bit
    if state is not None:
        yield run_start, stop, state


def _read_fixed(src: ByteSource, start: int, end: int) -> Iterator[Extent]:
    step = 2 << 20
    pos = start
    while pos < end:
        n = min(end, (pos // step + 1) * step) - pos
        yield Extent(pos, n, src.pread(pos, n, "VHD data"))
        pos += n


def _data_aligned(pos: int, bitmap_size: int) -> int:
    """The first block position from `pos` whose data (after its bitmap) starts on a 4 KiB
    boundary: the guest's pages then map onto whole filesystem blocks, so zero ranges become
    holes and I/O stays aligned."""
    return -(-(pos + bitmap_size) // 4096) * 4096 - bitmap_size


def make_footer(size: int, disk_type: int, flavour: str, data_offset: int) -> vf.Footer:
    """A footer as XenServer's vhd-util (exact size, creator "tap") or qemu writes it."""
    if flavour == "qemu":
        cyl, heads, spt = _covering_geometry(size)
        size = cyl * heads * spt * vf.SECTOR
        creator, version, host_os = b"qemu", 0x00050003, int.from_bytes(b"Wi2k", "big")
    else:
        cyl, heads, spt = vf.chs_geometry(size)
        creator, version, host_os = b"tap\0", vf.XENSERVER_CREATOR_VERSION, 0
    footer = vf.Footer(vf.FOOTER_COOKIE, 2, 0x00010000, data_offset, vf.vhd_timestamp(),
                       creator, version, host_os, size, size,
                       vf.geometry_field(cyl, heads, spt), disk_type, 0, uuid.uuid4().bytes,
                       0, 0)
    return footer.with_checksum()


def vhd_disk_size(size: int, flavour: str) -> int:
    """The virtual size a written VHD will have for `size` bytes of input."""
    size = -(-size // vf.SECTOR) * vf.SECTOR
    if flavour == "qemu":
        cyl, heads, spt = _covering_geometry(size)
        return cyl * heads * spt * vf.SECTOR
    return size


def _covering_geometry(size: int) -> tuple[int, int, int]:
    """The first CHS geometry that holds `size` bytes, as qemu's vpc driver searches for it:
    the spec's algorithm rounds down, so the sector count is raised until it fits."""
    sectors = -(-size // vf.SECTOR)
    extra = 0
    while True:
        cyl, heads, spt = vf.chs_geometry((sectors + extra) * vf.SECTOR)
        if cyl * heads * spt >= sectors or spt == 255:
            return cyl, heads, spt
        extra += 1


class VhdWriter(DiskWriter):
    format_name = "vhd"

    def _write(self, extents: Iterable[Extent], progress: ProgressFn) -> None:
        flavour = self.options.vhd_flavour
        if flavour not in ("xenserver", "qemu"):
            raise UnsupportedFeature(f"unknown VHD flavour {flavour!r} (xenserver or qemu)")
        size = vhd_disk_size(self.virtual_size, flavour)
        if self.options.vhd_type == "fixed":
            self._write_fixed(extents, progress, size, flavour)
        else:
            self._write_dynamic(extents, progress, size, flavour)

    def _write_fixed(self, extents: Iterable[Extent], progress: ProgressFn, size: int,
                     flavour: str) -> None:
        for ext in extents:
            for offset, data in data_runs(ext, HOLE_GRANULARITY):
                self.sink.pwrite(data, offset)
            progress(ext.length)
        self.sink.truncate(size)
        footer = make_footer(size, vf.TYPE_FIXED, flavour, vf.NO_DATA_OFFSET)
        self.sink.pwrite(footer.pack(), size)

    def _write_dynamic(self, extents: Iterable[Extent], progress: ProgressFn, size: int,
                       flavour: str) -> None:
        bs = vf.DEFAULT_BLOCK_SIZE
        entries = -(-size // bs)
        table_offset = 512 + 1024
        bat_bytes = -(-entries * 4 // vf.SECTOR) * vf.SECTOR
        data_start = table_offset + bat_bytes
        batmap_bytes = -(-entries // 8)
        batmap_sectors = max(1, -(-batmap_bytes // vf.SECTOR))
        if flavour == "xenserver":
            data_start += vf.SECTOR + batmap_sectors * vf.SECTOR
        bitmap = b"\xff" * vf.bitmap_bytes(bs)
        bat = [vf.BAT_UNUSED] * entries
        pos = _data_aligned(data_start, len(bitmap))
        for index, span in iter_blocks(tracked(extents, progress), bs, self.virtual_size):
            bat[index] = pos // vf.SECTOR
            self.sink.pwrite(bitmap, pos)
            # Zero parts of the block are left as holes in the file: they read back as zeros
            # and cost neither writes nor space, as in qemu's and blktap's own files.
            for offset, data in span.data_runs(index * bs, HOLE_GRANULARITY,
                                               pos + len(bitmap)):
                self.sink.pwrite(data, offset)
            pos = _data_aligned(pos + len(bitmap) + bs, len(bitmap))
        footer = make_footer(size, vf.TYPE_DYNAMIC, flavour, 512)
        header = vf.Header(vf.HEADER_COOKIE, vf.NO_DATA_OFFSET, table_offset, 0x00010000,
                           entries, bs, 0, bytes(16), 0, "", ())
        packed_bat = pack_table(bat, 4, "big").ljust(bat_bytes, b"\xff")
        self.sink.pwrite(footer.pack(), 0)
        self.sink.pwrite(header.pack(), 512)
        self.sink.pwrite(packed_bat, table_offset)
        if flavour == "xenserver":
            self._write_batmap(bat, table_offset + bat_bytes, batmap_sectors)
        self.sink.pwrite(footer.pack(), pos)
        self.sink.truncate(pos + vf.SECTOR)

    def _write_batmap(self, bat: list[int], at: int, sectors: int) -> None:
        """blktap's batmap: one bit per block, set when the block is fully allocated, which lets
        tapdisk skip reading the sector bitmap of such blocks."""
        bits = bytearray(sectors * vf.SECTOR)
        for index, sector in enumerate(bat):
            if sector != vf.BAT_UNUSED:
                bits[index >> 3] |= 0x80 >> (index & 7)
        checksum = (~sum(bits)) & 0xFFFFFFFF
        self.sink.pwrite(vf.pack_batmap_header(at + vf.SECTOR, sectors, checksum), at)
        self.sink.pwrite(bits, at + vf.SECTOR)
