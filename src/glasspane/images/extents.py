"""The one stream every reader produces and every writer consumes.

A disk is described by `Extent`s in increasing offset order that together cover the requested
range: each either carries its bytes or says "zeros" (``data is None``).  Zero extents can be
terabytes long without costing memory; data extents are bounded by the reader's block size.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

# One shared buffer of zeros: slices of bytes are compared with memcmp, far faster than a
# Python-level scan, and the buffer is never written.
_ZEROS = bytes(4 << 20)


@dataclass(frozen=True, slots=True)
class Extent:
    offset: int
    length: int
    data: bytes | None  # None: the range reads as zeros

    @property
    def end(self) -> int:
        return self.offset + self.length


def zeros(length: int) -> bytes:
    """A bytes object of `length` zeros, shared when small enough."""
    return _ZEROS[:length] if length <= len(_ZEROS) else bytes(length)


def is_zero(data: bytes | bytearray | memoryview) -> bool:
    """True when every byte of `data` is zero."""
    if isinstance(data, memoryview):
        # memoryview equality compares element by element in Python; bytes use memcmp.
        data = data.tobytes()
    n = len(data)
    step = len(_ZEROS)
    if n <= step:
        return data == _ZEROS[:n]
    view = memoryview(data)
    return all(view[i:i + step].tobytes() == _ZEROS[:min(step, n - i)]
               for i in range(0, n, step))


def iter_blocks(extents: Iterable[Extent], block_size: int, size: int
                ) -> Iterator[tuple[int, bytes]]:
    """Regroup an extent stream into aligned blocks: yields (block index, bytes) for each block
    holding at least one non-zero byte, in increasing order.  The last block may be short."""
    cur_index = -1
    buf: bytearray | None = None
    for ext in extents:
        data = ext.data
        if data is None:
            continue
        view = memoryview(data)
        pos = ext.offset
        end = ext.end
        while pos < end:
            index = pos // block_size
            bstart = index * block_size
            bend = min(bstart + block_size, size)
            take = min(end, bend) - pos
            if pos == bstart and take == bend - bstart:
                if buf is not None and not is_zero(buf):
                    yield cur_index, bytes(buf)
                buf, cur_index = None, -1
                piece = data if take == len(data) else bytes(view[pos - ext.offset:
                                                                   pos - ext.offset + take])
                if not is_zero(piece):
                    yield index, piece
            else:
                if index != cur_index:
                    if buf is not None and not is_zero(buf):
                        yield cur_index, bytes(buf)
                    buf, cur_index = bytearray(bend - bstart), index
                assert buf is not None
                rel = pos - ext.offset
                buf[pos - bstart:pos - bstart + take] = view[rel:rel + take]
            pos += take
    if buf is not None and not is_zero(buf):
        yield cur_index, bytes(buf)


def split_zero_runs(ext: Extent, granularity: int) -> Iterator[Extent]:
    """Split a data extent into data and zero extents at `granularity`-aligned boundaries, so a
    sparse writer can leave holes for the zero parts."""
    if ext.data is None:
        yield ext
        return
    view = memoryview(ext.data)
    run_start = ext.offset
    run_zero: bool | None = None
    pos = ext.offset
    while pos < ext.end:
        nxt = min(ext.end, (pos // granularity + 1) * granularity)
        zero = is_zero(view[pos - ext.offset:nxt - ext.offset])
        if run_zero is not None and zero != run_zero:
            yield _piece(ext, view, run_start, pos, run_zero)
            run_start = pos
        run_zero = zero
        pos = nxt
    if run_zero is not None:
        yield _piece(ext, view, run_start, ext.end, run_zero)


def _piece(ext: Extent, view: memoryview, start: int, end: int, zero: bool) -> Extent:
    if zero:
        return Extent(start, end - start, None)
    if start == ext.offset and end == ext.end:
        return ext
    return Extent(start, end - start, bytes(view[start - ext.offset:end - ext.offset]))


def clip(extents: Iterable[Extent], start: int, end: int) -> Iterator[Extent]:
    """Restrict an extent stream to [start, end)."""
    for ext in extents:
        if ext.end <= start or ext.offset >= end:
            continue
        a, b = max(ext.offset, start), min(ext.end, end)
        if a == ext.offset and b == ext.end:
            yield ext
        elif ext.data is None:
            yield Extent(a, b - a, None)
        else:
            yield Extent(a, b - a, ext.data[a - ext.offset:b - ext.offset])


def tracked(extents: Iterable[Extent], progress: Callable[[int], None]) -> Iterator[Extent]:
    """Pass extents through, reporting each one's length once the consumer asks for the next."""
    for ext in extents:
        yield ext
        progress(ext.length)
