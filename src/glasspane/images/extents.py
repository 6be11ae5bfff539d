"""The one stream every reader produces and every writer consumes.

A disk is described by `Extent`s in increasing offset order that together cover the requested
range: each either carries its bytes or says "zeros" (``data is None``).  Zero extents can be
terabytes long without costing memory; data extents are bounded by the reader's block size.

Writers regroup the stream into their own blocks as `Span`s: windows into the readers' buffers,
so that data is neither copied to be tested for zeros nor to be written.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

Buffer = bytes | bytearray | memoryview
_CACHED_ZEROS_LIMIT = 4 << 20


@dataclass(frozen=True, slots=True)
class Extent:
    offset: int
    length: int
    data: bytes | None  # None: the range reads as zeros

    @property
    def end(self) -> int:
        return self.offset + self.length


@functools.lru_cache(maxsize=32)
def _cached_zeros(length: int) -> bytes:
    return bytes(length)


def zeros(length: int) -> bytes:
    """`length` zero bytes; the few sizes writers use over and over are allocated once."""
    return _cached_zeros(length) if length <= _CACHED_ZEROS_LIMIT else bytes(length)


def is_zero(data: Buffer) -> bool:
    """True when every byte of `data` is zero (memcmp speed, no copy for bytes)."""
    if isinstance(data, memoryview):
        data = data.tobytes()
    return data.startswith(zeros(len(data)))


class Span:
    """`length` bytes of `buf` from `start`: a zero-copy window for writers."""

    __slots__ = ("buf", "length", "start")

    def __init__(self, buf: bytes | bytearray, start: int = 0, length: int | None = None) -> None:
        self.buf = buf
        self.start = start
        self.length = len(buf) - start if length is None else length

    def __len__(self) -> int:
        return self.length

    def region_is_zero(self, start: int, end: int) -> bool:
        """Whether [start, end) of this span (relative offsets) is all zeros."""
        return self.buf.startswith(zeros(end - start), self.start + start)

    def is_zero(self) -> bool:
        return self.region_is_zero(0, self.length)

    def view(self) -> Buffer:
        if self.start == 0 and self.length == len(self.buf):
            return self.buf
        return memoryview(self.buf)[self.start:self.start + self.length]

    def padded(self, size: int) -> Buffer:
        """The span extended with zeros to `size` bytes (a short last block)."""
        if self.length >= size:
            return self.view()
        return bytes(self.view()) + zeros(size - self.length)

    def data_runs(self, at: int, granularity: int, write_at: int | None = None
                  ) -> Iterator[tuple[int, Buffer]]:
        """(offset, bytes) of the non-zero runs of a span that holds guest offset `at`;
        granules are aligned on guest offsets, so the zero runs left out (holes) are those of
        the guest's data.  Offsets are guest offsets, or file offsets from `write_at`."""
        shift = (at if write_at is None else write_at) - at
        view = memoryview(self.buf)[self.start:self.start + self.length]
        run_start: int | None = None
        pos = 0
        while pos < self.length:
            nxt = min(self.length, ((at + pos) // granularity + 1) * granularity - at)
            if self.region_is_zero(pos, nxt):
                if run_start is not None:
                    yield at + shift + run_start, view[run_start:pos]
                    run_start = None
            elif run_start is None:
                run_start = pos
            pos = nxt
        if run_start is not None:
            yield at + shift + run_start, view[run_start:]


def data_runs(ext: Extent, granularity: int) -> Iterator[tuple[int, Buffer]]:
    """The non-zero runs of an extent: what a sparse writer has to write."""
    if ext.data is not None:
        yield from Span(ext.data).data_runs(ext.offset, granularity)


def iter_block_runs(extents: Iterable[Extent], block_size: int, size: int
                    ) -> Iterator[tuple[int, int, Span]]:
    """Regroup an extent stream into aligned blocks: yields (first block index, block count,
    span) for runs of consecutive blocks holding at least one non-zero byte each, in
    increasing order.  Blocks that arrive whole are windows into the reader's buffer and are
    grouped into runs; blocks pieced together from several extents come one at a time.  The
    disk's last block may be short."""
    cur_index = -1
    buf: bytearray | None = None
    run: list[int] | None = None  # [first index, count, start in data]
    run_data: bytes = b""
    for ext in extents:
        data = ext.data
        if data is None:
            continue
        whole = Span(data)
        pos = ext.offset
        end = ext.end
        while pos < end:
            index = pos // block_size
            bstart = index * block_size
            bend = min(bstart + block_size, size)
            take = min(end, bend) - pos
            rel = pos - ext.offset
            if pos == bstart and take == bend - bstart:
                if buf is not None and not is_zero(buf):
                    yield cur_index, 1, Span(buf)
                buf, cur_index = None, -1
                if whole.region_is_zero(rel, rel + take):
                    if run is not None:
                        yield _run_span(run, run_data, block_size)
                        run = None
                elif run is not None and run[0] + run[1] == index:
                    run[1] += 1
                else:
                    if run is not None:
                        yield _run_span(run, run_data, block_size)
                    run, run_data = [index, 1, rel], data
            else:
                if run is not None:
                    yield _run_span(run, run_data, block_size)
                    run = None
                if index != cur_index:
                    if buf is not None and not is_zero(buf):
                        yield cur_index, 1, Span(buf)
                    buf, cur_index = bytearray(bend - bstart), index
                assert buf is not None
                buf[pos - bstart:pos - bstart + take] = memoryview(data)[rel:rel + take]
            pos += take
        if run is not None:
            yield _run_span(run, run_data, block_size)
            run = None
    if buf is not None and not is_zero(buf):
        yield cur_index, 1, Span(buf)


def _run_span(run: list[int], data: bytes, block_size: int) -> tuple[int, int, Span]:
    first, count, start = run
    length = min(count * block_size, len(data) - start)
    return first, count, Span(data, start, length)


def iter_blocks(extents: Iterable[Extent], block_size: int, size: int
                ) -> Iterator[tuple[int, Span]]:
    """Like `iter_block_runs`, one block at a time: (block index, span)."""
    for first, count, span in iter_block_runs(extents, block_size, size):
        if count == 1:
            yield first, span
            continue
        for k in range(count):
            start = k * block_size
            yield first + k, Span(span.buf, span.start + start,
                                  min(block_size, span.length - start))


def tracked(extents: Iterable[Extent], progress: Callable[[int], None]) -> Iterator[Extent]:
    """Pass extents through, reporting each one's length once the consumer asks for the next."""
    for ext in extents:
        yield ext
        progress(ext.length)
