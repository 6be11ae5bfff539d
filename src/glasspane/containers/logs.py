"""Container logs as the Engine API sends them: without a TTY, stdout and stderr multiplexed in
frames (1 byte stream, 3 zero bytes, 4 bytes big-endian length, payload); with one, raw."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator

STREAMS = {0: "stdin", 1: "stdout", 2: "stderr"}
HEADER = struct.Struct(">BxxxI")


def demultiplex(chunks: Iterable[bytes]) -> Iterator[tuple[str, bytes]]:
    """(stream, payload) for each frame, however the frames were cut into chunks."""
    pending = bytearray()
    for chunk in chunks:
        pending += chunk
        while len(pending) >= HEADER.size:
            kind, size = HEADER.unpack_from(pending)
            if len(pending) < HEADER.size + size:
                break
            payload = bytes(pending[HEADER.size:HEADER.size + size])
            del pending[:HEADER.size + size]
            yield STREAMS.get(kind, "stdout"), payload
    if pending:  # a stream cut mid-frame: what arrived is still worth showing
        yield "stdout", bytes(pending[HEADER.size:] if len(pending) > HEADER.size else b"")


def raw(chunks: Iterable[bytes]) -> Iterator[tuple[str, bytes]]:
    for chunk in chunks:
        yield "stdout", chunk
