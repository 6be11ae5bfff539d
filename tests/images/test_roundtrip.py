"""Every format to every format keeps the content bit-identical, zeros stay unallocated."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from glasspane.images.detect import open_disk, open_image
from glasspane.images.vm import VmImage
from tests.conftest import SAMPLE_SIZE
from tests.images.helpers import assert_pattern, assert_same, convert_to

FORMATS = {
    "raw": ("raw", {}),
    "vhd-dynamic": ("vhd", {}),
    "vhd-fixed": ("vhd", {"vhd_type": "fixed"}),
    "vhd-qemu": ("vhd", {"vhd_flavour": "qemu"}),
    "qcow2": ("qcow2", {}),
    "qcow2-compressed": ("qcow2", {"compress": True}),
    "vmdk": ("vmdk", {}),
    "xva": ("xva", {}),
    "xva-xxhash": ("xva", {"xva_checksum": "xxhash"}),
    "ova": ("ova", {}),
}


@pytest.fixture(scope="module")
def every_format(sample_raw: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("every-format")
    out = {}
    for name, (ext, options) in FORMATS.items():
        out[name] = convert_to(sample_raw, directory / f"{name}.{ext}", **options)
    return out


@pytest.mark.parametrize("name", FORMATS)
def test_written_image_holds_the_pattern(every_format: dict[str, Path], name: str) -> None:
    image = open_image(str(every_format[name]))
    try:
        disk = image.disks[0].image if isinstance(image, VmImage) else image
        assert disk.virtual_size >= SAMPLE_SIZE
        assert_pattern(disk, SAMPLE_SIZE)
    finally:
        image.close()


@pytest.mark.parametrize("src", FORMATS)
@pytest.mark.parametrize("dst", FORMATS)
def test_every_pair_round_trips(every_format: dict[str, Path], sample_raw: Path,
                                tmp_path: Path, src: str, dst: str) -> None:
    ext, options = FORMATS[dst]
    out = convert_to(every_format[src], tmp_path / f"out.{ext}", **options)
    assert_same(sample_raw, out)


def test_zero_regions_stay_unallocated(every_format: dict[str, Path], sample_raw: Path,
                                       tmp_path: Path) -> None:
    data_bytes = os.stat(sample_raw).st_blocks * 512
    assert data_bytes < SAMPLE_SIZE * 0.5  # the sample itself is sparse
    raw = convert_to(every_format["xva"], tmp_path / "back.raw")
    assert os.stat(raw).st_blocks * 512 <= data_bytes + (1 << 20)
    for name in ("qcow2", "vhd-dynamic"):
        disk = open_disk(str(every_format[name]))
        try:
            # qcow2 allocates 64 KiB clusters, VHD 2 MiB blocks: both well under the full size.
            assert disk.allocated_bytes() < SAMPLE_SIZE * 0.75, name
        finally:
            disk.close()
    qcow2 = open_disk(str(every_format["qcow2"]))
    try:
        assert qcow2.allocated_bytes() <= data_bytes + (64 << 10)
    finally:
        qcow2.close()
