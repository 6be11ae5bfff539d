"""XVA, XenServer's VM export: a tar whose first member is ova.xml, then for each VDI (in string
order of its ref) 1 MiB chunks `Ref:N/%08d`, each followed by its checksum member (`.checksum`,
SHA-1 lowercase hex, or `.xxhash`, XXH64 uppercase hex).  Missing chunk numbers are zeros; the
first and the last chunk are always present.  Read in place, exactly as XAPI's importer
(stream_vdi.ml) interprets the stream; written so that importer accepts it."""

from __future__ import annotations

import bisect
import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import xxhash

from glasspane.errors import ChecksumError, FormatError, LimitExceeded
from glasspane.images import tar
from glasspane.images import xva_meta as meta
from glasspane.images.base import ByteSink, DiskImage, Problem, ProgressFn, check_virtual_size
from glasspane.images.extents import Buffer, Extent, Span, iter_blocks, tracked, zeros
from glasspane.images.parallel import ordered_map
from glasspane.images.source import ByteSource
from glasspane.images.vm import VmDisk, VmImage, VmSettings

CHUNK = 1 << 20
MAX_CHUNK = 64 << 20
_CHUNK_NAME = re.compile(r"^(Ref:[^/]+)/(\d+)(\.checksum|\.xxhash)?$")


def checksum_hex(kind: str, data: Buffer) -> bytes:
    if kind == ".xxhash":
        return b"%016X" % xxhash.xxh64_intdigest(data)
    return hashlib.sha1(data).hexdigest().encode()


@dataclass(frozen=True)
class Chunk:
    offset: int          # within the disk
    member: tar.TarMember
    checksum: tar.TarMember | None


class XvaDisk(DiskImage):
    format_name = "xva-disk"

    def __init__(self, source: ByteSource, ref: str, virtual_size: int,
                 chunks: list[Chunk]) -> None:
        super().__init__(source, virtual_size)
        self.ref = ref
        self.chunks = chunks
        self._starts = [c.offset for c in chunks]

    def _extents(self, start: int, end: int) -> Iterator[Extent]:
        i = max(0, bisect.bisect_right(self._starts, start) - 1)
        wanted = []
        while i < len(self.chunks) and self.chunks[i].offset < end:
            c = self.chunks[i]
            if c.offset + c.member.size > start and c.member.size:
                wanted.append(c)
            i += 1
        pos = start
        for chunk, data in ordered_map(self._read_chunk, wanted, workers=2, window=8):
            a = max(start, chunk.offset)
            b = min(end, chunk.offset + len(data))
            if a > pos:
                yield Extent(pos, a - pos, None)
            yield Extent(a, b - a, data if (a, b) == (chunk.offset, chunk.offset + len(data))
                         else data[a - chunk.offset:b - chunk.offset])
            pos = b
        if pos < end:
            yield Extent(pos, end - pos, None)

    def _read_chunk(self, chunk: Chunk) -> tuple[Chunk, bytes]:
        m = chunk.member
        data = self.source.pread(m.offset, m.size, f"XVA chunk {m.name}")
        if chunk.checksum is not None:
            kind = "." + chunk.checksum.name.rsplit(".", 1)[1]
            stored = self.source.pread(chunk.checksum.offset, chunk.checksum.size,
                                       f"XVA checksum {chunk.checksum.name}")
            computed = checksum_hex(kind, data)
            if stored != computed:
                raise ChecksumError(
                    f"chunk {m.name} ({m.size} bytes, disk offset {chunk.offset}) has "
                    f"{kind[1:]} {computed.decode()} but the archive records "
                    f"{stored[:64].decode('latin-1')!r}", path=self.source.path,
                    structure=f"XVA member {chunk.checksum.name}", offset=m.header_offset,
                    hint="the export is corrupt; export the VM again")
        return chunk, data

    def allocated_bytes(self) -> int:
        return sum(c.member.size for c in self.chunks)


class XvaArchive:
    """Index of an XVA: ova.xml parsed, every chunk located, nothing extracted."""

    def __init__(self, source: ByteSource) -> None:
        self.source = source
        self.path = source.path
        members = iter(tar.iter_members(source))
        first = next(members, None)
        if first is None or first.name != "ova.xml":
            raise FormatError("first member is not ova.xml", path=self.path,
                              structure="XVA", offset=0,
                              hint="not an XVA, or repacked by a tool that reordered it")
        if first.size > meta.MAX_OVA_XML:
            raise LimitExceeded(f"ova.xml of {first.size} bytes", path=self.path)
        self.doc = meta.parse_ova_xml(source.pread(first.offset, first.size, "ova.xml"),
                                      self.path)
        self.vm_record, self.disk_records = meta.disks_of(self.doc, self.path)
        self.chunks = self._index_chunks(members)

    def _index_chunks(self, members: Iterator[tar.TarMember]) -> dict[str, list[Chunk]]:
        sizes = {d.ref: d.virtual_size for d in self.disk_records}
        for ref, size in sizes.items():
            check_virtual_size(size, self.path, f"ova.xml VDI {ref}")
        out: dict[str, list[Chunk]] = {}
        state: dict[str, tuple[int, int, int]] = {}  # ref -> (last number, next offset, first len)
        pending: tuple[str, int, tar.TarMember] | None = None
        for m in members:
            if m.kind == "dir":
                continue
            match = _CHUNK_NAME.match(m.name)
            if not match:
                raise FormatError(f"unexpected member {m.name!r}", path=self.path,
                                  structure="XVA member", offset=m.header_offset)
            ref, number, ext = match.group(1), int(match.group(2)), match.group(3)
            if ext:
                if pending is None or pending[2].name != m.name[:-len(ext)]:
                    raise FormatError(f"checksum {m.name!r} does not follow its chunk",
                                      path=self.path, structure="XVA member",
                                      offset=m.header_offset)
                if m.size > 128:
                    raise FormatError(f"checksum member of {m.size} bytes", path=self.path,
                                      structure="XVA member", offset=m.header_offset)
                out[pending[0]][-1] = Chunk(pending[1], pending[2], m)
                pending = None
                continue
            if ref not in sizes:
                raise FormatError(f"chunk {m.name!r} belongs to no VDI named in ova.xml",
                                  path=self.path, structure="XVA member",
                                  offset=m.header_offset)
            if m.size > MAX_CHUNK:
                raise LimitExceeded(f"chunk {m.name} of {m.size} bytes", path=self.path)
            last, offset, first_len = state.get(ref, (-1, 0, -1))
            if number <= last:
                raise FormatError(f"chunk {m.name!r} is out of order (after {last:08d})",
                                  path=self.path, structure="XVA member",
                                  offset=m.header_offset)
            if first_len < 0:
                first_len = m.size
            # The importer's rule: skipped numbers stand for chunks of the first chunk's length.
            offset += (number - last - 1) * first_len
            if offset + m.size > sizes[ref]:
                raise FormatError(
                    f"chunk {m.name!r} ends at {offset + m.size}, past the VDI's virtual size "
                    f"{sizes[ref]}", path=self.path, structure="XVA member",
                    offset=m.header_offset)
            out.setdefault(ref, []).append(Chunk(offset, m, None))
            pending = (ref, offset, m)
            state[ref] = (number, offset + m.size, first_len)
        return out

    def vm(self) -> VmImage:
        rec = self.vm_record
        disks = [VmDisk(d.name, XvaDisk(self.source, d.ref, d.virtual_size,
                                        self.chunks.get(d.ref, [])))
                 for d in self.disk_records]
        memory = meta.int_field(rec, "memory_static_max", 0, self.path, meta.MAX_MEMORY) >> 20
        return VmImage(name=str(rec.get("name_label", "")),
                       vcpus=meta.int_field(rec, "VCPUs_max", 1, self.path, meta.MAX_VCPUS),
                       memory_mib=memory or 1024,
                       disks=disks, format_name="xva", path=self.path, source=self.source,
                       details=self.details(), archive_check=self.check)

    def details(self) -> dict[str, Any]:
        version = self.doc.get("version", {})
        return {"xapi_version": f"{version.get('xapi_major')}.{version.get('xapi_minor')}",
                "export_vsn": version.get("export_vsn"),
                "checksums": sorted({c.checksum.name.rsplit(".", 1)[1]
                                     for cs in self.chunks.values() for c in cs if c.checksum})}

    def check(self) -> list[Problem]:
        problems: list[Problem] = []
        for chunks in self.chunks.values():
            for c in chunks:
                if c.checksum is None:
                    problems.append(Problem(f"XVA member {c.member.name}", "has no checksum",
                                            c.member.header_offset))
        return problems


def write_xva(sink: ByteSink, settings: VmSettings,
              disks: list[tuple[int, Iterable[Extent]]], progress: ProgressFn,
              checksum: str = "sha1") -> None:
    """Stream an XVA: ova.xml, then each disk's non-zero chunks (and always the first and the
    last) with their checksum members."""
    ext = ".xxhash" if checksum == "xxhash" else ".checksum"
    xml = meta.build_ova_xml(settings, [size for size, _ in disks])
    sink.append(tar.header("ova.xml", len(xml)) + xml + tar.padding(len(xml)))
    for disk_index, (size, extents) in enumerate(disks):
        ref = meta.vdi_ref(disk_index)
        for number, data, digest in ordered_map(
                lambda item: (item[0], item[1].view(), checksum_hex(ext, item[1].view())),
                _with_ends(iter_blocks(tracked(extents, progress), CHUNK, size), size),
                workers=2, window=8):
            name = f"{ref}/{number:08d}"
            for piece in (tar.header(name, len(data)), data, tar.padding(len(data)),
                          tar.header(name + ext, len(digest)), digest,
                          tar.padding(len(digest))):
                sink.append(piece)
    sink.append(tar.END_OF_ARCHIVE)
    sink.flush()


def _with_ends(blocks: Iterator[tuple[int, Span]], size: int) -> Iterator[tuple[int, Span]]:
    """XAPI always writes the first and the last chunk, and its importer relies on the first
    one to know the chunk length: insert them as zeros when the data has none."""
    if size == 0:
        return
    last = (size - 1) // CHUNK
    seen_first = False
    for index, data in blocks:
        if not seen_first and index != 0:
            yield 0, Span(zeros(min(CHUNK, size)))
        seen_first = True
        yield index, data
        if index == last:
            return
    if not seen_first:
        yield 0, Span(zeros(min(CHUNK, size)))
    if last != 0:
        yield last, Span(zeros(size - last * CHUNK))
