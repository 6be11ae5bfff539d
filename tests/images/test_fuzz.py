"""Every parser, driven with mutated real images for a bounded number of examples: each either
reads the image or raises one of the project's own errors: never another exception, a hang or
a huge allocation.  The tar reader under every XVA and OVA is also driven with pax headers of
any size, and watched to read each header once: forward, always."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glasspane.errors import GlasspaneError
from glasspane.images import tar
from glasspane.images.detect import open_image
from glasspane.images.sample import write_sample
from glasspane.images.source import ByteSource
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


class _Watched(ByteSource):
    """Fails the example if a tar header is read at or before one read already: a reader that
    does not move forward would otherwise loop until the test's timeout."""

    def __init__(self, path: str) -> None:
        source = ByteSource.open(path)
        super().__init__(source.fd, path, owns_fd=True)
        self.last_header = -1

    def pread(self, offset: int, length: int, structure: str) -> bytes:
        if structure == "tar header":
            assert offset > self.last_header, f"tar header at {offset} read again"
            self.last_header = offset
        return super().pread(offset, length, structure)


PAX_VALUES = st.one_of(st.integers(-(1 << 20), 1 << 20).map(str),
                       st.text(alphabet="0123456789-+ _.eabcx\0", max_size=14))


@pytest.mark.timeout(300)
def test_tar_reader_moves_forward_whatever_the_pax_size_says() -> None:
    from tests.images import hostile

    @settings(max_examples=int(os.environ.get("GLASSPANE_FUZZ_EXAMPLES", "150")),
              deadline=None, database=None)
    @given(PAX_VALUES, st.sampled_from(["size", "path"]), st.integers(0, 3))
    def run(value: str, key: str, trailing: int) -> None:
        members = [hostile.member("PaxHeaders/x", hostile.pax_record(key, value), b"x"),
                   hostile.member("x.ovf", b"<Envelope/>" * 100)]
        members += [hostile.member(f"f{i}", b"y" * 700) for i in range(trailing)]
        fd, path = tempfile.mkstemp(suffix=".tar")
        try:
            os.write(fd, b"".join(members) + tar.END_OF_ARCHIVE)
            os.close(fd)
            source = _Watched(path)
            try:
                for _ in tar.iter_members(source):
                    pass
            except GlasspaneError:
                pass
            finally:
                source.close()
        finally:
            Path(path).unlink()

    run()
