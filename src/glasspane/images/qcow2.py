"""qcow2 reader (versions 2 and 3, backing files, compressed clusters, zero clusters) and
writer (version 3, 64 KiB clusters, optionally deflate-compressed, written in one pass)."""

from __future__ import annotations

import array
import zlib
from collections.abc import Iterable, Iterator
from typing import Any

from glasspane.errors import FormatError, LimitExceeded, UnsupportedFeature
from glasspane.images import qcow2_format as qf
from glasspane.images.base import DiskImage, DiskWriter, Problem, ProgressFn, check_virtual_size
from glasspane.images.extents import Buffer, Extent, Span, iter_block_runs, iter_blocks, tracked
from glasspane.images.parallel import ordered_map
from glasspane.images.references import STANDALONE, References
from glasspane.images.source import ByteSource
from glasspane.images.tables import pack_table, read_table

MAX_L1_BYTES = 32 << 20
MAX_CHAIN_DEPTH = 64
MERGE_LIMIT = 2 << 20  # contiguous host clusters are read together up to this size


class Qcow2Image(DiskImage):
    format_name = "qcow2"

    def __init__(self, source: ByteSource, depth: int = 0,
                 references: References = STANDALONE) -> None:
        blob = source.pread(0, min(source.size, 4096), "qcow2 header")
        if blob[:4] != qf.MAGIC:
            raise FormatError("bad magic (not a qcow2 header)", path=source.path,
                              structure="qcow2 header", offset=0)
        version = int.from_bytes(blob[4:8], "big") if len(blob) >= 8 else 0
        needed = qf.V3_HEADER_SIZE if version >= 3 else qf.V2_HEADER_SIZE
        if len(blob) < needed:
            raise FormatError(f"truncated: the version {version} header needs {needed} bytes, "
                              f"the file has {len(blob)}", path=source.path,
                              structure="qcow2 header", offset=0)
        hdr = qf.Qcow2Header.unpack(blob)
        self.header = hdr
        super().__init__(source, check_virtual_size(hdr.size, source.path, "qcow2 header", 24))
        self._validate_header()
        self.cluster_size = hdr.cluster_size
        self.l2_entries = self.cluster_size // 8
        l1_raw = source.pread(hdr.l1_table_offset, hdr.l1_size * 8, "qcow2 L1 table")
        self.l1 = read_table(l1_raw, 8, "big")
        self._l2_cache: tuple[int, array.array[int]] | None = None
        self.backing_format: str | None = None
        self._read_extensions(blob)
        if hdr.backing_file_offset:
            self.parent = self._open_backing(depth, references)

    def _fail(self, message: str, structure: str, offset: int | None = None) -> FormatError:
        return FormatError(message, path=self.path, structure=structure, offset=offset)

    def _validate_header(self) -> None:
        hdr = self.header
        if hdr.version not in (2, 3):
            raise UnsupportedFeature(f"qcow2 version {hdr.version} (2 and 3 are supported)",
                                     path=self.path)
        if not 9 <= hdr.cluster_bits <= 21:
            raise self._fail(f"cluster_bits {hdr.cluster_bits} outside 9..21", "qcow2 header", 20)
        if hdr.crypt_method:
            raise UnsupportedFeature("encrypted qcow2 images are not supported", path=self.path)
        unknown = hdr.incompatible_features & ~qf.KNOWN_INCOMPAT
        if unknown & qf.INCOMPAT_DATA_FILE:
            raise UnsupportedFeature("qcow2 with an external data file", path=self.path)
        if unknown & qf.INCOMPAT_EXTENDED_L2:
            raise UnsupportedFeature("qcow2 with extended L2 entries (subclusters)",
                                     path=self.path)
        if unknown & qf.INCOMPAT_COMPRESSION and hdr.compression_type != 0:
            raise UnsupportedFeature(
                f"qcow2 compression type {hdr.compression_type} (only zlib is supported)",
                path=self.path, hint="qemu-img convert -O qcow2 -o compression_type=zlib")
        if unknown & ~qf.INCOMPAT_COMPRESSION:
            raise UnsupportedFeature(f"unknown incompatible features 0x{unknown:x}",
                                     path=self.path)
        cs = hdr.cluster_size
        per_l1 = cs * (cs // 8)
        needed = -(-hdr.size // per_l1)
        if hdr.l1_size < needed:
            raise self._fail(f"L1 table has {hdr.l1_size} entries, {needed} needed for "
                             f"{hdr.size} bytes", "qcow2 header", 36)
        if hdr.l1_size * 8 > MAX_L1_BYTES:
            raise LimitExceeded(f"L1 table of {hdr.l1_size} entries is absurdly large",
                                path=self.path)
        if hdr.l1_table_offset % cs or hdr.l1_table_offset == 0:
            raise self._fail(f"L1 table offset {hdr.l1_table_offset} is not a non-zero "
                             f"multiple of the cluster size", "qcow2 header", 40)

    def _read_extensions(self, blob: bytes) -> None:
        hdr = self.header
        pos = hdr.header_length if hdr.version >= 3 else qf.V2_HEADER_SIZE
        limit = min(len(blob), hdr.cluster_size)
        while pos + 8 <= limit:
            ext_type = int.from_bytes(blob[pos:pos + 4], "big")
            length = int.from_bytes(blob[pos + 4:pos + 8], "big")
            if ext_type == qf.EXT_END:
                return
            if pos + 8 + length > limit:
                raise self._fail(f"header extension 0x{ext_type:08x} of {length} bytes runs "
                                 "past the header", "qcow2 header extension", pos)
            if ext_type == qf.EXT_BACKING_FORMAT:
                self.backing_format = blob[pos + 8:pos + 8 + length].decode("ascii", "replace")
            pos += 8 + ((length + 7) & ~7)

    def _open_backing(self, depth: int, references: References) -> DiskImage:
        hdr = self.header
        if hdr.backing_file_size > 1023:
            raise self._fail("backing file name longer than 1023 bytes", "qcow2 header", 16)
        name = self.source.pread(hdr.backing_file_offset, hdr.backing_file_size,
                                 "qcow2 backing file name").decode("utf-8", "replace")
        if depth >= MAX_CHAIN_DEPTH:
            raise self._fail(f"backing chain deeper than {MAX_CHAIN_DEPTH}", "qcow2 backing file")
        source = references.open(self.source, [name], "backing file", "qcow2 backing file")
        from glasspane.images.detect import open_disk_source
        return open_disk_source(source, self.backing_format, depth + 1, references)

    def _l2_table(self, l1_index: int) -> array.array[int] | None:
        entry = self.l1[l1_index]
        offset = entry & qf.OFFSET_MASK
        if not offset:
            return None
        if self._l2_cache and self._l2_cache[0] == offset:
            return self._l2_cache[1]
        cs = self.cluster_size
        hdr = self.header
        if offset % cs:
            raise self._fail(f"L2 table offset {offset} is not cluster aligned",
                             f"qcow2 L1 entry {l1_index}", hdr.l1_table_offset + l1_index * 8)
        l1_end = hdr.l1_table_offset + hdr.l1_size * 8
        if offset < cs or hdr.l1_table_offset <= offset < l1_end:
            raise self._fail(f"L2 table offset {offset} points into the header or the L1 table",
                             f"qcow2 L1 entry {l1_index}", hdr.l1_table_offset + l1_index * 8)
        table = read_table(self.source.pread(offset, cs, f"qcow2 L2 table {l1_index}"), 8,
                           "big")
        self._l2_cache = (offset, table)
        return table

    def _extents(self, start: int, end: int) -> Iterator[Extent]:
        cs = self.cluster_size
        span = cs * self.l2_entries
        pos = start
        while pos < end:
            l1_index = pos // span
            stop = min(end, (l1_index + 1) * span)
            table = self._l2_table(l1_index)
            if table is None:
                yield from self._absent(pos, stop)
            else:
                yield from self._l2_extents(l1_index, table, pos, stop)
            pos = stop

    def _absent(self, start: int, end: int) -> Iterator[Extent]:
        if self.parent is None or start >= self.parent.virtual_size:
            yield Extent(start, end - start, None)
            return
        mid = min(end, self.parent.virtual_size)
        yield from self.parent.extents(start, mid)
        if mid < end:
            yield Extent(mid, end - mid, None)

    def _l2_extents(self, l1_index: int, table: array.array[int], start: int, end: int
                    ) -> Iterator[Extent]:
        cs = self.cluster_size
        base = l1_index * cs * self.l2_entries
        i = (start - base) // cs
        pos = start
        while pos < end:
            entry = table[i]
            cstart = base + i * cs
            stop = min(end, cstart + cs)
            if entry & qf.OFLAG_COMPRESSED:
                data = self._decompress(entry, l1_index, i)
                yield Extent(pos, stop - pos, data[pos - cstart:stop - cstart])
                pos, i = stop, i + 1
                continue
            host = entry & qf.OFFSET_MASK
            if entry & qf.OFLAG_ZERO or not host:
                # Merge a run of zero/unallocated clusters.
                zero = bool(entry & qf.OFLAG_ZERO)
                j = i + 1
                while (base + j * cs < end and not table[j] & qf.OFLAG_COMPRESSED
                       and bool(table[j] & qf.OFLAG_ZERO) == zero
                       and (zero or not table[j] & qf.OFFSET_MASK)):
                    j += 1
                stop = min(end, base + j * cs)
                if zero:
                    yield Extent(pos, stop - pos, None)
                else:
                    yield from self._absent(pos, stop)
                pos, i = stop, j
                continue
            # Merge host-contiguous data clusters into one read.
            j = i + 1
            while (base + j * cs < end and (base + j * cs) - pos < MERGE_LIMIT
                   and not table[j] & (qf.OFLAG_COMPRESSED | qf.OFLAG_ZERO)
                   and table[j] & qf.OFFSET_MASK == host + (j - i) * cs):
                j += 1
            stop = min(end, base + j * cs)
            self._check_data_cluster(host, l1_index, i)
            yield Extent(pos, stop - pos, self.source.pread(
                host + (pos - cstart), stop - pos, f"qcow2 data cluster (L2 {l1_index}/{i})"))
            pos, i = stop, j

    def _check_data_cluster(self, host: int, l1_index: int, l2_index: int) -> None:
        if host % self.cluster_size or host < self.cluster_size:
            raise self._fail(f"data cluster offset {host} is unaligned or inside the header",
                             f"qcow2 L2 table {l1_index} entry {l2_index}")

    def _decompress(self, entry: int, l1_index: int, l2_index: int) -> bytes:
        offset, length = qf.compressed_location(entry, self.header.cluster_bits)
        length = min(length, self.source.size - offset)
        raw = self.source.pread(offset, length, f"qcow2 compressed cluster (L2 {l1_index}/"
                                                f"{l2_index})")
        try:
            data = zlib.decompressobj(-15).decompress(raw, self.cluster_size)
        except zlib.error as exc:
            raise self._fail(f"compressed cluster does not inflate: {exc}",
                             f"qcow2 compressed cluster (L2 {l1_index}/{l2_index})",
                             offset) from None
        if len(data) != self.cluster_size:
            raise self._fail(f"compressed cluster inflates to {len(data)} bytes, not "
                             f"{self.cluster_size}", "qcow2 compressed cluster", offset)
        return data

    def allocated_bytes(self) -> int:
        total = 0
        for l1_index in range(len(self.l1)):
            table = self._l2_table(l1_index)
            if table is not None:
                total += sum(1 for e in table if e & qf.OFFSET_MASK or e & qf.OFLAG_COMPRESSED)
        return total * self.cluster_size

    def details(self) -> dict[str, Any]:
        hdr = self.header
        return {"qcow2_version": hdr.version, "cluster_size": hdr.cluster_size,
                "backing_format": self.backing_format,
                "dirty": bool(hdr.incompatible_features & qf.INCOMPAT_DIRTY),
                "corrupt": bool(hdr.incompatible_features & qf.INCOMPAT_CORRUPT)}

    def check(self) -> list[Problem]:
        problems = super().check()
        if self.header.incompatible_features & qf.INCOMPAT_CORRUPT:
            problems.append(Problem("qcow2 header", "image is marked corrupt", 72))
        seen: dict[int, str] = {}
        for l1_index in range(len(self.l1)):
            try:
                table = self._l2_table(l1_index)
            except FormatError as exc:
                problems.append(Problem(exc.structure or "qcow2", exc.message, exc.offset))
                continue
            if table is None:
                continue
            for l2_index, entry in enumerate(table):
                host = entry & qf.OFFSET_MASK
                if entry & qf.OFLAG_COMPRESSED or not host:
                    continue
                where = f"L2 {l1_index}/{l2_index}"
                if host in seen:
                    problems.append(Problem(f"qcow2 {where}",
                                            f"cluster {host} also used by {seen[host]}"))
                seen[host] = where
        return problems


class Qcow2Writer(DiskWriter):
    format_name = "qcow2"
    cluster_bits = 16

    def _write(self, extents: Iterable[Extent], progress: ProgressFn) -> None:
        cs = 1 << self.cluster_bits
        l2_entries = cs // 8
        size = self.virtual_size
        l1_size = max(1, -(-size // (cs * l2_entries)))
        l1_clusters = -(-l1_size * 8 // cs)
        data_clusters_max = -(-size // cs) + l1_size + l1_clusters + 2
        refblock_entries = cs * 8 // 16
        rb_max = -(-data_clusters_max // refblock_entries) + 2
        rt_clusters = max(1, -(-rb_max * 8 // cs))
        self.refcounts = array.array("H")
        self._cs = cs
        rt_offset = cs
        l1_offset = rt_offset + rt_clusters * cs
        self._end = l1_offset + l1_clusters * cs
        self._count(0, self._end)
        self._l1 = l1 = [0] * l1_size
        self._l2: array.array[int] | None = None
        self._l2_index = -1
        self._l2_offset = 0
        if self.options.compress:
            self._write_compressed(tracked(extents, progress))
        else:
            self._write_plain(tracked(extents, progress))
        self._flush_current_l2()
        self._end = -(-self._end // cs) * cs
        self.sink.pwrite(pack_table(l1, 8, "big"), l1_offset)
        self._write_refcounts(rt_offset, rt_clusters)
        hdr = qf.Qcow2Header(3, 0, 0, self.cluster_bits, size, 0, l1_size, l1_offset,
                             rt_offset, rt_clusters, 0, 0, 0, 0, 0, 4, qf.V3_HEADER_SIZE)
        self.sink.pwrite(hdr.pack() + bytes(8), 0)
        self.sink.truncate(self._end)

    def _flush_current_l2(self) -> None:
        if self._l2 is not None:
            self._flush_l2(self._l2, self._l2_offset)

    def _table_for(self, index: int) -> array.array[int]:
        """The L2 table holding cluster `index`, allocated (after the previous one is written
        out) when the stream enters its range."""
        li = index // (self._cs // 8)
        if li != self._l2_index or self._l2 is None:
            self._flush_current_l2()
            self._l2_index, self._l2 = li, array.array("Q", bytes(self._cs))
            self._l2_offset = self._alloc(self._cs)
            self._l1[li] = self._l2_offset | qf.OFLAG_COPIED
        return self._l2

    def _write_plain(self, extents: Iterable[Extent]) -> None:
        """Uncompressed: runs of data clusters are appended with one write each."""
        cs, per_table = self._cs, self._cs // 8
        for first, count, span in iter_block_runs(extents, cs, self.virtual_size):
            k = 0
            while k < count:
                index = first + k
                table = self._table_for(index)
                n = min(count - k, per_table - index % per_table)
                at = self._alloc(n * cs)
                self.sink.pwrite(Span(span.buf, span.start + k * cs,
                                      min(n * cs, span.length - k * cs)).view(), at)
                slot = index % per_table
                for j in range(n):
                    table[slot + j] = (at + j * cs) | qf.OFLAG_COPIED
                k += n

    def _write_compressed(self, extents: Iterable[Extent]) -> None:
        blocks = iter_blocks(extents, self._cs, self.virtual_size)
        per_table = self._cs // 8
        for index, (data, compressed) in ordered_map(self._pack_cluster, blocks):
            table = self._table_for(index)
            if compressed:
                at = self._alloc_bytes(len(data))
                entry = qf.compressed_entry(at, len(data), self.cluster_bits)
            else:
                at = self._alloc(self._cs)
                entry = at | qf.OFLAG_COPIED
            self.sink.pwrite(data, at)
            table[index % per_table] = entry

    def _pack_cluster(self, item: tuple[int, Span]) -> tuple[int, tuple[Buffer, bool]]:
        index, span = item
        data = span.padded(self._cs)
        co = zlib.compressobj(6, zlib.DEFLATED, -12)
        packed = co.compress(data) + co.flush()
        # As qemu does: keep a cluster that does not shrink uncompressed.
        if len(packed) >= self._cs - 512:
            return index, (data, False)
        return index, (packed, True)

    def _count(self, start: int, end: int) -> None:
        first, last = start // self._cs, (end - 1) // self._cs
        have = len(self.refcounts)
        if first >= have:  # appending whole new clusters: the common case, done in bulk
            self.refcounts.extend(array.array("H", bytes(2 * (first - have))))
            self.refcounts.extend(array.array("H", [1]) * (last + 1 - first))
            return
        if have <= last:
            self.refcounts.extend(array.array("H", bytes(2 * (last + 1 - have))))
        for c in range(first, last + 1):
            self.refcounts[c] += 1

    def _alloc(self, length: int) -> int:
        at = -(-self._end // self._cs) * self._cs
        self._end = at + length
        self._count(at, self._end)
        return at

    def _alloc_bytes(self, length: int) -> int:
        """Sector-aligned space for a compressed cluster, packed after the previous one."""
        at = -(-self._end // 512) * 512
        self._end = at + length
        self._count(at, self._end)
        # A cluster already counted for the previous compressed cluster is shared: one
        # reference per compressed cluster touching it, as qemu counts them.
        return at

    def _flush_l2(self, table: array.array[int], offset: int) -> None:
        self.sink.pwrite(pack_table(table, 8, "big"), offset)

    def _write_refcounts(self, rt_offset: int, rt_clusters: int) -> None:
        cs = self._cs
        per_block = cs // 2
        n_clusters = self._end // cs
        blocks = -(-n_clusters // per_block)
        while -(-(n_clusters + blocks) // per_block) > blocks:
            blocks += 1
        if blocks * 8 > rt_clusters * cs:
            raise LimitExceeded("refcount table too small (internal sizing error)")
        rb_offset = self._end
        for b in range(blocks):
            self._count(rb_offset + b * cs, rb_offset + (b + 1) * cs)
        self._end = rb_offset + blocks * cs
        table = bytearray(rt_clusters * cs)
        for b in range(blocks):
            counts = self.refcounts[b * per_block:(b + 1) * per_block]
            self.sink.pwrite(pack_table(counts, 2, "big"), rb_offset + b * cs)
            table[b * 8:b * 8 + 8] = (rb_offset + b * cs).to_bytes(8, "big")
        self.sink.pwrite(bytes(table), rt_offset)
