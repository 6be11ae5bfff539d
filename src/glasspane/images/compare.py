"""`image compare`: do two images show the guest the same bytes?  Works across formats by
walking both extent streams in step; zero ranges on both sides cost nothing."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from glasspane.errors import UsageError
from glasspane.images.base import DiskImage
from glasspane.images.detect import open_image
from glasspane.images.extents import Extent, is_zero
from glasspane.images.references import STANDALONE, References
from glasspane.images.vm import VmImage


@dataclass
class CompareResult:
    identical: bool
    first_difference: int | None = None
    size_a: int = 0
    size_b: int = 0
    disk: int | None = None

    def describe(self) -> str:
        where = f"disk {self.disk}: " if self.disk is not None else ""
        if self.identical:
            extra = "" if self.size_a == self.size_b else (
                f" (sizes {self.size_a} and {self.size_b} differ; the extra part is zeros)")
            return f"{where}images are identical{extra}"
        return f"{where}content differs at offset {self.first_difference}"


def _disks(image: DiskImage | VmImage, disk: int | None) -> list[DiskImage]:
    if isinstance(image, VmImage):
        disks = [d.image for d in image.disks]
        if disk is not None:
            if not 0 <= disk < len(disks):
                raise UsageError(f"{image.path} has no disk {disk}")
            return [disks[disk]]
        return disks
    return [image]


def compare_images(a: str, b: str, disk: int | None = None,
                   references: References = STANDALONE, a_format: str | None = None,
                   b_format: str | None = None) -> list[CompareResult]:
    img_a = open_image(a, a_format, references)
    try:
        img_b = open_image(b, b_format, references)
    except BaseException:
        img_a.close()
        raise
    try:
        disks_a, disks_b = _disks(img_a, disk), _disks(img_b, disk)
        if len(disks_a) != len(disks_b):
            raise UsageError(f"{a} has {len(disks_a)} disk(s) and {b} has {len(disks_b)}",
                             hint="choose one with --disk N")
        results = []
        for i, (da, db) in enumerate(zip(disks_a, disks_b, strict=True)):
            r = compare_disks(da, db)
            if len(disks_a) > 1 or disk is not None:
                r.disk = disk if disk is not None else i
            results.append(r)
        return results
    finally:
        img_a.close()
        img_b.close()


def _cursor(image: DiskImage) -> Iterator[Extent]:
    yield from image.extents()
    # Past the end of the shorter disk, compare against zeros.
    yield Extent(image.virtual_size, 1 << 62, None)


def compare_disks(a: DiskImage, b: DiskImage) -> CompareResult:
    size = max(a.virtual_size, b.virtual_size)
    ia, ib = _cursor(a), _cursor(b)
    ea, eb = next(ia), next(ib)
    pos = 0
    while pos < size:
        while ea.end <= pos:
            ea = next(ia)
        while eb.end <= pos:
            eb = next(ib)
        end = min(size, ea.end, eb.end)
        da, db = _slice(ea, pos, end), _slice(eb, pos, end)
        if da != db:
            return CompareResult(False, pos + _first_diff(da, db, end - pos),
                                 a.virtual_size, b.virtual_size)
        pos = end
    return CompareResult(True, None, a.virtual_size, b.virtual_size)


def _slice(ext: Extent, start: int, end: int) -> bytes | None:
    """The bytes of [start, end) from `ext`, or None when they are all zeros."""
    if ext.data is None:
        return None
    if start == ext.offset and end == ext.end:
        piece = ext.data
    else:
        piece = ext.data[start - ext.offset:end - ext.offset]
    return None if is_zero(piece) else piece


def _first_diff(a: bytes | None, b: bytes | None, length: int) -> int:
    a = a if a is not None else bytes(length)
    b = b if b is not None else bytes(length)
    step = 4096
    for i in range(0, length, step):
        if a[i:i + step] != b[i:i + step]:
            for j in range(i, min(i + step, length)):
                if a[j] != b[j]:
                    return j
    return length
