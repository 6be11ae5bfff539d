"""What every format module provides: a `DiskImage` reader and a `DiskWriter`.

Readers answer `extents(start, end)` from their on-disk tables without materializing zeros;
writers consume such a stream in increasing offset order and write through a `ByteSink`, so the
same writer can fill a plain file or a member inside an archive (a VMDK inside an OVA).
"""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from glasspane.errors import FormatError, LimitExceeded, OutputError
from glasspane.images.extents import Extent
from glasspane.images.source import ByteSource

# A declared virtual size above this is treated as hostile or corrupt rather than allocated
# for: 64 TiB is above what XenServer (2 TiB VHD), VMware (62 TiB) or qcow2 users create.
MAX_VIRTUAL_SIZE = 64 << 40

ProgressFn = Callable[[int], None]


def check_virtual_size(size: int, path: str, structure: str, offset: int | None = None) -> int:
    if size < 0:
        raise FormatError(f"negative virtual size {size}", path=path, structure=structure,
                          offset=offset)
    if size > MAX_VIRTUAL_SIZE:
        raise LimitExceeded(
            f"{structure} declares a virtual size of {size} bytes, beyond the limit of "
            f"{MAX_VIRTUAL_SIZE} bytes (64 TiB)", path=path,
            hint="the header is probably corrupt")
    return size


@dataclass
class Problem:
    """One finding of `image check`."""

    structure: str
    message: str
    offset: int | None = None

    def __str__(self) -> str:
        where = f" at offset {self.offset}" if self.offset is not None else ""
        return f"{self.structure}{where}: {self.message}"


class DiskImage(ABC):
    """A readable virtual disk."""

    format_name: ClassVar[str]

    def __init__(self, source: ByteSource, virtual_size: int) -> None:
        self.source = source
        self.path = source.path
        self.virtual_size = virtual_size
        self.parent: DiskImage | None = None

    def extents(self, start: int = 0, end: int | None = None) -> Iterator[Extent]:
        """Extents covering [start, end) in order; end defaults to the virtual size."""
        end = self.virtual_size if end is None else min(end, self.virtual_size)
        if start >= end:
            return iter(())
        return self._extents(start, end)

    @abstractmethod
    def _extents(self, start: int, end: int) -> Iterator[Extent]:
        """Extents covering [start, end), 0 <= start < end <= virtual_size."""

    def read(self, offset: int, length: int) -> bytes:
        out = bytearray(length)
        for ext in self.extents(offset, offset + length):
            if ext.data is not None:
                out[ext.offset - offset:ext.end - offset] = ext.data
        return bytes(out)

    def allocated_bytes(self) -> int:
        """Bytes the file occupies on its filesystem; formats with tables refine it."""
        st = os.fstat(self.source.fd)
        if self.source.base or self.source.size != st.st_size:
            return self.source.size
        return st.st_blocks * 512

    def details(self) -> dict[str, Any]:
        """Format-specific facts for `image info`."""
        return {}

    def check(self) -> list[Problem]:
        """Structural problems; the default reads every extent, which runs the format's own
        bounds and checksum validation."""
        problems: list[Problem] = []
        try:
            for _ in self.extents():
                pass
        except FormatError as exc:
            problems.append(Problem(exc.structure or self.format_name, exc.message, exc.offset))
        return problems

    def chain(self) -> list[DiskImage]:
        """This image and its parents (backing files), nearest first."""
        out: list[DiskImage] = []
        img: DiskImage | None = self
        while img is not None:
            out.append(img)
            img = img.parent
        return out

    def close(self) -> None:
        if self.parent is not None:
            self.parent.close()
        self.source.close()


class ByteSink:
    """Positional writes into a file, optionally offset by `base` (a member of an archive).

    Writes that continue where the previous one ended are gathered and issued as one pwritev,
    without copying: writers emit many small contiguous pieces (clusters, tar headers, grain
    markers).  The caller must not modify a buffer after handing it over, and must call
    `flush()` before reading the file back.
    """

    GATHER_BYTES = 4 << 20
    GATHER_BUFFERS = 256

    def __init__(self, fd: int, path: str, base: int = 0) -> None:
        self.fd = fd
        self.path = path
        self.base = base
        self.end = 0  # highest byte written, relative to base
        self._pending: list[bytes | bytearray | memoryview] = []
        self._pending_at = 0
        self._pending_len = 0

    def pwrite(self, data: bytes | bytearray | memoryview, offset: int) -> None:
        length = len(data)
        if not length:
            return
        if self._pending and offset != self._pending_at + self._pending_len:
            self.flush()
        if not self._pending:
            self._pending_at = offset
        self._pending.append(data)
        self._pending_len += length
        self.end = max(self.end, offset + length)
        if self._pending_len >= self.GATHER_BYTES or len(self._pending) >= self.GATHER_BUFFERS:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        buffers, at, total = self._pending, self._pending_at, self._pending_len
        self._pending, self._pending_len = [], 0
        try:
            written = os.pwritev(self.fd, buffers, self.base + at)
            if written < total:  # a short write: finish the rest piece by piece
                rest = memoryview(b"".join(bytes(b) for b in buffers))[written:]
                pos = written
                while rest:
                    n = os.pwrite(self.fd, rest, self.base + at + pos)
                    rest, pos = rest[n:], pos + n
        except OSError as exc:
            raise OutputError(f"{self.path}: write failed at offset {at}: {exc.strerror}"
                              ) from exc

    def append(self, data: bytes | bytearray | memoryview) -> int:
        """Write at the current end; returns the offset written at."""
        at = self.end
        self.pwrite(data, at)
        return at

    def truncate(self, length: int) -> None:
        """Set the size (relative to base): extends with a hole."""
        self.flush()
        try:
            os.ftruncate(self.fd, self.base + length)
        except OSError as exc:
            raise OutputError(f"{self.path}: cannot set size: {exc.strerror}") from exc
        self.end = max(self.end, length)


@dataclass
class WriteOptions:
    """Options a writer may honour; each format reads the ones it knows."""

    compress: bool = False
    vhd_type: str = "dynamic"          # dynamic | fixed
    vhd_flavour: str = "xenserver"     # xenserver | qemu
    xva_checksum: str = "sha1"         # sha1 (.checksum) | xxhash (.xxhash)
    vm_name: str | None = None
    vcpus: int | None = None
    memory_mib: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class DiskWriter(ABC):
    """Writes one virtual disk from an extent stream."""

    format_name: ClassVar[str]

    def __init__(self, sink: ByteSink, virtual_size: int, options: WriteOptions) -> None:
        self.sink = sink
        self.virtual_size = virtual_size
        self.options = options

    def write(self, extents: Iterable[Extent], progress: ProgressFn) -> None:
        """Consume `extents` (in order, covering the disk) and finish the file."""
        self._write(extents, progress)
        self.sink.flush()

    @abstractmethod
    def _write(self, extents: Iterable[Extent], progress: ProgressFn) -> None:
        """The format's own writing; gathered writes are flushed by `write`."""
