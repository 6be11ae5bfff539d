"""Test helpers: expected content of the sample pattern, and conversions in one call."""

from __future__ import annotations

from pathlib import Path

from glasspane.images.base import DiskImage, WriteOptions
from glasspane.images.compare import compare_images
from glasspane.images.convert import convert
from glasspane.images.references import FOLLOW_ANYWHERE
from glasspane.images.sample import MIB, expected_mib


def convert_to(src: Path, dst: Path, **options: object) -> Path:
    convert(str(src), str(dst), options=WriteOptions(**options),  # type: ignore[arg-type]
            overwrite=True, references=FOLLOW_ANYWHERE)
    return dst


def assert_same(a: Path, b: Path, disk: int | None = None) -> None:
    results = compare_images(str(a), str(b), disk, FOLLOW_ANYWHERE)
    assert results, "nothing compared"
    for r in results:
        assert r.identical, f"{a} vs {b}: {r.describe()}"


def assert_pattern(image: DiskImage, size: int) -> None:
    """Spot-check the sample pattern at every MiB of `image`."""
    for i in range(-(-size // MIB)):
        length = min(MIB, size - i * MIB)
        assert image.read(i * MIB, length) == expected_mib(i, length), f"MiB {i} differs"
