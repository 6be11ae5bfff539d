"""Raw disk images: the file is the disk.  Holes are found with SEEK_DATA/SEEK_HOLE and never
read; written zero ranges are left as holes."""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator

from glasspane.images.base import DiskImage, DiskWriter, ProgressFn
from glasspane.images.extents import Extent, data_runs

READ_BLOCK = 2 << 20
# Zero runs shorter than this are written as data: punching 4 KiB holes costs more than it saves.
HOLE_GRANULARITY = 64 << 10


class RawImage(DiskImage):
    format_name = "raw"

    def _data_ranges(self, start: int, end: int) -> Iterator[tuple[int, int]]:
        """(start, end) ranges that may hold data, relative to the image."""
        base = self.source.base
        pos = start
        while pos < end:
            try:
                data = os.lseek(self.source.fd, base + pos, os.SEEK_DATA) - base
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    return
                if exc.errno in (errno.EINVAL, errno.EOPNOTSUPP):  # no sparse support
                    yield pos, end
                    return
                raise
            if data >= end:
                return
            hole = min(os.lseek(self.source.fd, base + data, os.SEEK_HOLE) - base, end)
            yield max(data, pos), hole
            pos = hole

    def _extents(self, start: int, end: int) -> Iterator[Extent]:
        pos = start
        for dstart, dend in self._data_ranges(start, end):
            if dstart > pos:
                yield Extent(pos, dstart - pos, None)
            at = dstart
            while at < dend:
                # Align reads to READ_BLOCK so writers get block-aligned pieces.
                n = min(dend, (at // READ_BLOCK + 1) * READ_BLOCK) - at
                yield Extent(at, n, self.source.pread(at, n, "data"))
                at += n
            pos = dend
        if pos < end:
            yield Extent(pos, end - pos, None)


class RawWriter(DiskWriter):
    format_name = "raw"

    def _write(self, extents: Iterable[Extent], progress: ProgressFn) -> None:
        for ext in extents:
            for offset, data in data_runs(ext, HOLE_GRANULARITY):
                self.sink.pwrite(data, offset)
            progress(ext.length)
        self.sink.truncate(self.virtual_size)

