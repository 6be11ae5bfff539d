"""A generated test disk with a known pattern, so any offset can be checked without a reference
file: MiB number i holds byte (i % 251) + 1 where it holds data.  Per 10 MiB: 3 MiB full, 1 MiB
half-full, 1 MiB of alternating 64 KiB data/zero stripes, 5 MiB zeros (about 40% data).  Used
by the demo, the benchmarks and the tests' image generator."""

from __future__ import annotations

import os

MIB = 1 << 20
STRIPE = 64 << 10


def fill_byte(mib_index: int) -> int:
    return (mib_index % 251) + 1


def mib_layout(mib_index: int) -> str:
    """'full', 'half', 'stripes' or 'zero'."""
    r = mib_index % 10
    return "full" if r < 3 else "half" if r == 3 else "stripes" if r == 4 else "zero"


def expected_mib(mib_index: int, length: int = MIB) -> bytes:
    layout = mib_layout(mib_index)
    value = bytes([fill_byte(mib_index)])
    if layout == "full":
        return value * length
    if layout == "half":
        return (value * (MIB // 2) + bytes(MIB // 2))[:length]
    if layout == "stripes":
        stripe = value * STRIPE + bytes(STRIPE)
        return (stripe * (MIB // (2 * STRIPE)))[:length]
    return bytes(length)


def write_sample(path: str, size: int) -> None:
    """A sparse raw file of `size` bytes with the pattern; zero parts are holes."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        for i in range(-(-size // MIB)):
            if mib_layout(i) == "zero":
                continue
            length = min(MIB, size - i * MIB)
            data = expected_mib(i, length)
            if mib_layout(i) == "full":
                os.pwrite(fd, data, i * MIB)
            else:
                for off in range(0, length, STRIPE):
                    piece = data[off:off + STRIPE]
                    if piece.count(0) != len(piece):
                        os.pwrite(fd, piece, i * MIB + off)
    finally:
        os.close(fd)
