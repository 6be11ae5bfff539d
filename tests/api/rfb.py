"""A minimal RFB (VNC) client over any byte stream, for the console tests: the handshake
(ProtocolVersion, security None, ClientInit, ServerInit) and one full FramebufferUpdate in raw
encoding."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass


class Stream:
    """Exact reads over `recv` (which gives whatever arrived: a socket's, a WebSocket's)."""

    def __init__(self, recv: Callable[[], bytes], send: Callable[[bytes], None]) -> None:
        self._recv, self.send = recv, send
        self._buffer = b""

    def read(self, size: int) -> bytes:
        while len(self._buffer) < size:
            data = self._recv()
            assert data, f"the stream ended {size - len(self._buffer)} bytes short"
            self._buffer += data
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out


@dataclass
class ServerInit:
    width: int
    height: int
    bits_per_pixel: int
    name: bytes


def handshake(stream: Stream) -> ServerInit:
    version = stream.read(12)
    assert version.startswith(b"RFB 003.") and version.endswith(b"\n"), version
    stream.send(b"RFB 003.008\n")
    count = stream.read(1)[0]
    assert count, stream.read(struct.unpack(">I", stream.read(4))[0])  # the reason, if none
    types = stream.read(count)
    assert 1 in types, f"no security None among {list(types)}"
    stream.send(b"\x01")
    assert struct.unpack(">I", stream.read(4))[0] == 0, "security None refused"
    stream.send(b"\x01")  # ClientInit: shared
    width, height = struct.unpack(">HH", stream.read(4))
    pixel_format = stream.read(16)
    name = stream.read(struct.unpack(">I", stream.read(4))[0])
    return ServerInit(width, height, pixel_format[0], name)


def frame(stream: Stream, init: ServerInit) -> bytes:
    """The whole screen's pixels, from one non-incremental FramebufferUpdate (raw)."""
    stream.send(struct.pack(">BBHHHH", 3, 0, 0, 0, init.width, init.height))
    while True:
        kind = stream.read(1)[0]
        if kind == 0:
            break
        assert kind == 2, f"unexpected server message {kind}"  # 2: a bell, skipped
    _, rects = struct.unpack(">BH", stream.read(3))
    pixels = b""
    for _ in range(rects):
        _x, _y, w, h, encoding = struct.unpack(">HHHHi", stream.read(12))
        assert encoding == 0, f"encoding {encoding} (raw was the only one offered)"
        pixels += stream.read(w * h * init.bits_per_pixel // 8)
    return pixels
