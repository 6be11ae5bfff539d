"""On-disk tables of fixed-size unsigned integers (BATs, L1/L2 tables, grain directories,
refcount blocks) to and from `array.array`, whatever the host's byte order."""

from __future__ import annotations

import array
import sys
from collections.abc import Sequence

# Typecodes by entry size: array's own sizes are platform-defined, so pick the matching one.
_TYPECODES = {size: next(c for c in "BHILQ" if array.array(c).itemsize == size)
              for size in (1, 2, 4, 8)}


def read_table(raw: bytes, entry_size: int, byteorder: str) -> array.array[int]:
    """Entries of `entry_size` bytes stored in `byteorder` ("big" or "little")."""
    table = array.array(_TYPECODES[entry_size], raw)
    if byteorder != sys.byteorder:
        table.byteswap()
    return table


def pack_table(entries: Sequence[int], entry_size: int, byteorder: str) -> bytes:
    table = array.array(_TYPECODES[entry_size], entries)
    if byteorder != sys.byteorder:
        table.byteswap()
    return table.tobytes()
