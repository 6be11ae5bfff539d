"""Every parser, driven with mutated real images for a bounded number of examples: each either
reads the image or raises one of the project's own errors: never another exception, a hang or
a huge allocation."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glasspane.errors import GlasspaneError
from glasspane.images.detect import open_image
from glasspane.images.sample import write_sample
from glasspane.images.vm import VmImage
from tests.images.helpers import convert_to

FORMATS = {"vhd": {}, "vhd-fixed": {"vhd_type": "fixed"}, "qcow2": {},
           "qcow2-compressed": {"compress": True}, "vmdk": {}, "xva": {}, "ova": {}}


@pytest.fixture(scope="module")
def originals(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    directory = tmp_path_factory.mktemp("fuzz")
    raw = directory / "small.raw"
    write_sample(str(raw), 3 << 20)
    out = {}
    for name, options in FORMATS.items():
        ext = name.split("-")[0]
        out[name] = convert_to(raw, directory / f"{name}.{ext}", **options).read_bytes()
    return out


def mutations(length: int) -> st.SearchStrategy[tuple[list[tuple[int, int]], int | None]]:
    # Metadata lives at both ends of these formats: aim most flips there.
    offset = st.one_of(st.integers(0, min(length, 8192) - 1),
                       st.integers(max(0, length - 4096), length - 1),
                       st.integers(0, length - 1))
    flips = st.lists(st.tuples(offset, st.integers(0, 255)), min_size=1, max_size=6)
    cut = st.one_of(st.none(), st.integers(0, length - 1))
    return st.tuples(flips, cut)


def read_everything(path: str) -> None:
    image = open_image(path)
    try:
        disks = [d.image for d in image.disks] if isinstance(image, VmImage) else [image]
        for disk in disks:
            for _ in disk.extents():
                pass
            disk.check()
    finally:
        image.close()


@pytest.mark.parametrize("name", FORMATS)
def test_mutated_images_fail_cleanly(originals: dict[str, bytes], name: str) -> None:
    original = originals[name]
    ext = name.split("-", maxsplit=1)[0]

    # GLASSPANE_FUZZ_EXAMPLES raises the count for a long local session.
    @settings(max_examples=int(os.environ.get("GLASSPANE_FUZZ_EXAMPLES", "150")),
              deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(mutations(len(original)))
    def run(mutation: tuple[list[tuple[int, int]], int | None]) -> None:
        flips, cut = mutation
        data = bytearray(original)
        for offset, value in flips:
            data[offset] = value
        if cut is not None:
            del data[cut:]
        fd, path = tempfile.mkstemp(suffix=f".{ext}")
        try:
            os.write(fd, data)
            os.close(fd)
            try:
                read_everything(path)
            except GlasspaneError:
                pass
        finally:
            Path(path).unlink()

    run()
