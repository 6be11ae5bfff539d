"""VMDK reader (monolithicSparse and streamOptimized hosted sparse extents) and writer
(streamOptimized, the form OVAs carry: deflated grains with markers, grain directory at the
end, written strictly sequentially)."""

from __future__ import annotations

import array
import os
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from glasspane.errors import FormatError, LimitExceeded, UnsupportedFeature
from glasspane.images import vmdk_format as vm
from glasspane.images.base import DiskImage, DiskWriter, Problem, ProgressFn, check_virtual_size
from glasspane.images.extents import Extent, Span, iter_blocks, tracked
from glasspane.images.parallel import ordered_map
from glasspane.images.source import ByteSource
from glasspane.images.tables import pack_table, read_table

SECTOR = vm.SECTOR


class VmdkImage(DiskImage):
    format_name = "vmdk"

    def __init__(self, source: ByteSource) -> None:
        blob = source.pread(0, SECTOR, "VMDK sparse header")
        if vm.SparseHeader.magic_of(blob) != vm.MAGIC:
            raise FormatError("bad magic (not a hosted sparse extent)", path=source.path,
                              structure="VMDK sparse header", offset=0,
                              hint="descriptor-only VMDKs: convert the extent file they name")
        hdr = vm.SparseHeader.unpack(blob)
        self.path = source.path
        if hdr.gd_offset == vm.GD_AT_END:
            hdr = self._footer_header(source)
        self.header = hdr
        super().__init__(source, check_virtual_size(hdr.capacity * SECTOR, source.path,
                                                     "VMDK sparse header", 12))
        self._validate()
        self.descriptor = self._read_descriptor()
        self.grain_bytes = hdr.grain_size * SECTOR
        self.gt_span = self.grain_bytes * hdr.gtes_per_gt
        n_gd = -(-self.virtual_size // self.gt_span) if self.virtual_size else 0
        self.gd = read_table(source.pread(hdr.gd_offset * SECTOR, n_gd * 4,
                                          "VMDK grain directory"), 4, "little")
        self._gt_cache: tuple[int, array.array[int]] | None = None

    def _fail(self, message: str, structure: str, offset: int | None = None) -> FormatError:
        return FormatError(message, path=self.path, structure=structure, offset=offset)

    def _footer_header(self, source: ByteSource) -> vm.SparseHeader:
        """streamOptimized: the real header is the footer, before the end-of-stream marker."""
        at = source.size - 3 * SECTOR
        marker = source.pread(at, SECTOR, "VMDK footer marker")
        _, size, kind = vm.parse_marker(marker)
        if size != 0 or kind != vm.MARKER_FOOTER:
            raise FormatError("footer marker missing: the stream is truncated", path=source.path,
                              structure="VMDK footer marker", offset=at)
        footer = source.pread(at + SECTOR, SECTOR, "VMDK footer")
        if vm.SparseHeader.magic_of(footer) != vm.MAGIC:
            raise FormatError("bad footer magic", path=source.path, structure="VMDK footer",
                              offset=at + SECTOR)
        return vm.SparseHeader.unpack(footer)

    def _validate(self) -> None:
        hdr = self.header
        if hdr.version not in (1, 2, 3):
            raise UnsupportedFeature(f"VMDK sparse version {hdr.version}", path=self.path)
        gs = hdr.grain_size
        if gs < 1 or gs > 2048 or gs & (gs - 1):
            raise self._fail(f"grain size {gs} sectors is not a power of two up to 1 MiB",
                             "VMDK sparse header", 20)
        if hdr.gtes_per_gt != 512:
            raise self._fail(f"{hdr.gtes_per_gt} entries per grain table (must be 512)",
                             "VMDK sparse header", 44)
        if hdr.flags & vm.FLAG_COMPRESSED:
            if hdr.compress_algorithm != vm.COMPRESS_DEFLATE:
                raise UnsupportedFeature(f"compression algorithm {hdr.compress_algorithm}",
                                         path=self.path)
            if not hdr.flags & vm.FLAG_MARKERS:
                raise UnsupportedFeature("compressed grains without markers", path=self.path)
        if hdr.gd_offset == vm.GD_AT_END or hdr.gd_offset * SECTOR >= self.source.size:
            raise self._fail(f"grain directory offset {hdr.gd_offset} is outside the file",
                             "VMDK sparse header", 56)

    def _read_descriptor(self) -> vm.Descriptor:
        hdr = self.header
        if not hdr.descriptor_offset:
            return vm.Descriptor()
        size = hdr.descriptor_size * SECTOR
        if size > vm.MAX_DESCRIPTOR_BYTES:
            raise LimitExceeded(f"embedded descriptor of {size} bytes", path=self.path)
        raw = self.source.pread(hdr.descriptor_offset * SECTOR, size, "VMDK descriptor")
        text = raw.split(b"\0", 1)[0]
        try:
            return vm.parse_descriptor(text.decode("utf-8"))
        except UnicodeDecodeError as exc:
            raise self._fail(f"descriptor is not text ({exc.reason} at byte {exc.start})",
                             "VMDK descriptor", hdr.descriptor_offset * SECTOR) from None
        except vm.DescriptorError as exc:
            raise self._fail(str(exc), "VMDK descriptor", hdr.descriptor_offset * SECTOR
                             ) from None

    def _grain_table(self, index: int) -> array.array[int] | None:
        sector = self.gd[index]
        if sector == 0:
            return None
        if self._gt_cache and self._gt_cache[0] == sector:
            return self._gt_cache[1]
        if sector * SECTOR < SECTOR:
            raise self._fail(f"grain table {index} points into the header",
                             f"VMDK grain directory entry {index}")
        raw = self.source.pread(sector * SECTOR, self.header.gtes_per_gt * 4,
                                f"VMDK grain table {index}")
        table = read_table(raw, 4, "little")
        self._gt_cache = (sector, table)
        return table

    def _extents(self, start: int, end: int) -> Iterator[Extent]:
        pos = start
        while pos < end:
            gd_index = pos // self.gt_span
            stop = min(end, (gd_index + 1) * self.gt_span)
            table = self._grain_table(gd_index)
            if table is None:
                yield Extent(pos, stop - pos, None)
            else:
                yield from self._table_extents(gd_index, table, pos, stop)
            pos = stop

    def _table_extents(self, gd_index: int, table: array.array[int], start: int, end: int
                       ) -> Iterator[Extent]:
        gb = self.grain_bytes
        base = gd_index * self.gt_span
        pos = start
        while pos < end:
            i = (pos - base) // gb
            gstart = base + i * gb
            stop = min(end, gstart + gb)
            sector = table[i]
            if sector <= 1 and (sector == 0 or self.header.flags & vm.FLAG_ZERO_GTE):
                yield Extent(pos, stop - pos, None)
            else:
                data = self._grain(sector, gd_index, i)
                yield Extent(pos, stop - pos, data[pos - gstart:stop - gstart])
            pos = stop

    def _grain(self, sector: int, gd_index: int, gt_index: int) -> bytes:
        where = f"VMDK grain {gd_index}/{gt_index}"
        at = sector * SECTOR
        gb = self.grain_bytes
        if not self.header.flags & vm.FLAG_COMPRESSED:
            return self.source.pread(at, gb, where)
        lba, size = vm.parse_grain_marker(self.source.pread(at, 12, where + " marker"))
        if size > gb * 2 + 1024:
            raise self._fail(f"compressed grain claims {size} bytes", where, at)
        raw = self.source.pread(at + 12, size, where)
        try:
            data = zlib.decompressobj().decompress(raw, gb)
        except zlib.error as exc:
            raise self._fail(f"grain does not inflate: {exc}", where, at) from None
        expected = (gd_index * self.header.gtes_per_gt + gt_index) * self.header.grain_size
        if lba != expected:
            raise self._fail(f"grain marker says LBA {lba}, grain table says {expected}",
                             where, at)
        if len(data) < gb:
            # The last grain of a disk that is not a multiple of the grain may be short.
            data = data.ljust(gb, b"\0")
        return data

    def allocated_bytes(self) -> int:
        return os.fstat(self.source.fd).st_size if not self.source.base else self.source.size

    def details(self) -> dict[str, Any]:
        return {"create_type": self.descriptor.create_type or None,
                "grain_size": self.grain_bytes,
                "compressed": bool(self.header.flags & vm.FLAG_COMPRESSED)}

    def check(self) -> list[Problem]:
        problems = super().check()
        if self.header.unclean_shutdown:
            problems.append(Problem("VMDK sparse header", "unclean shutdown flag is set", 72))
        return problems


class VmdkWriter(DiskWriter):
    """streamOptimized writer: every grain deflated behind a marker, grain tables after each
    512 grains, then the grain directory, the footer and the end-of-stream marker."""

    format_name = "vmdk"
    grain_sectors = 128

    def _write(self, extents: Iterable[Extent], progress: ProgressFn) -> None:
        gb = self.grain_sectors * SECTOR
        capacity = -(-self.virtual_size // SECTOR)
        extent_name = os.path.basename(self.sink.path)
        desc = vm.make_descriptor(capacity, extent_name,
                                  int.from_bytes(os.urandom(4), "big") or 1).encode()
        desc_sectors = max(20, -(-len(desc) // SECTOR))
        overhead = 1 + desc_sectors
        header = vm.SparseHeader(3, vm.FLAG_NEWLINE_TEST | vm.FLAG_COMPRESSED | vm.FLAG_MARKERS,
                                 capacity, self.grain_sectors, 1, desc_sectors, 512, 0,
                                 vm.GD_AT_END, overhead, 0, vm.COMPRESS_DEFLATE)
        self.sink.pwrite(header.pack(), 0)
        self.sink.pwrite(desc.ljust(desc_sectors * SECTOR, b"\0"), SECTOR)
        self.sink.end = overhead * SECTOR
        n_gd = -(-capacity // (self.grain_sectors * 512))
        gd = [0] * n_gd
        table: list[int] | None = None
        table_index = -1
        blocks = iter_blocks(tracked(extents, progress), gb, self.virtual_size)
        for index, packed in ordered_map(_deflate_grain, blocks):
            gi = index // 512
            if gi != table_index:
                if table is not None:
                    gd[table_index] = self._write_table(table)
                table, table_index = [0] * 512, gi
            assert table is not None
            at = self.sink.end
            lba = index * self.grain_sectors
            record = vm.grain_marker(lba, len(packed)) + packed
            self.sink.append(record.ljust(-(-len(record) // SECTOR) * SECTOR, b"\0"))
            table[index % 512] = at // SECTOR
        if table is not None:
            gd[table_index] = self._write_table(table)
        gd_bytes = pack_table(gd, 4, "little")
        gd_sectors = max(1, -(-len(gd_bytes) // SECTOR))
        self.sink.append(vm.meta_marker(gd_sectors, vm.MARKER_GD))
        gd_at = self.sink.append(gd_bytes.ljust(gd_sectors * SECTOR, b"\0"))
        header.gd_offset = gd_at // SECTOR
        self.sink.append(vm.meta_marker(1, vm.MARKER_FOOTER))
        self.sink.append(header.pack())
        self.sink.append(vm.meta_marker(0, vm.MARKER_EOS))

    def _write_table(self, table: list[int]) -> int:
        raw = pack_table(table, 4, "little")
        self.sink.append(vm.meta_marker(len(raw) // SECTOR, vm.MARKER_GT))
        return self.sink.append(raw) // SECTOR


def _deflate_grain(item: tuple[int, Span]) -> tuple[int, bytes]:
    index, span = item
    # A short last grain is padded: readers (qemu among them) expect whole grains.
    return index, zlib.compress(span.padded(VmdkWriter.grain_sectors * SECTOR), 6)
