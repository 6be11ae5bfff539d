"""The loopback XAPI's VM consoles: `CONNECT /console?uuid=...&session_id=...` (or `ref=`), as
XAPI's console handler takes it (console.ml: the session checked first, then the console, then
its VM running), answered `HTTP/1.1 200 OK` and followed by an RFB server as QEMU's behind
XAPI speaks it: version 3.8, security None, a ServerInit (640x480, 32 bits per pixel, the VM's
name) and raw FramebufferUpdates of a pattern that is not blank."""

from __future__ import annotations

import struct
from typing import BinaryIO

WIDTH, HEIGHT = 640, 480
# 32 bpp, depth 24, little-endian, true colour, 8 bits per channel (red at 16, green at 8).
PIXEL_FORMAT = struct.pack(">BBBBHHHBBBxxx", 32, 24, 0, 1, 255, 255, 255, 16, 8, 0)


def find(xapi: object, query: dict[str, str]) -> tuple[int, str, str]:
    """(status, reason, VM name) for a CONNECT's query: 200 with the VM's name, else the
    refusal XAPI answers."""
    objects = xapi.objects  # type: ignore[attr-defined]
    if query.get("session_id") not in xapi.sessions:  # type: ignore[attr-defined]
        return 401, "Unauthorized", ""
    consoles = objects["console"]
    ref = query.get("ref") or next((r for r, c in consoles.items()
                                    if c["uuid"] == query.get("uuid")), "")
    console = consoles.get(ref)
    if console is None:
        return 404, "Not Found", ""
    vm = objects["VM"][console["VM"]]
    if vm["power_state"] != "Running":
        return 503, "Service Unavailable", ""  # no display to proxy to
    return 200, "OK", str(vm["name_label"])


def _read(source: BinaryIO, size: int) -> bytes:
    data = source.read(size)
    if len(data) < size:
        raise EOFError
    return data


def serve_rfb(source: BinaryIO, sink: BinaryIO, name: str) -> None:
    """One RFB session until the client goes."""
    try:
        sink.write(b"RFB 003.008\n")
        sink.flush()
        if not _read(source, 12).startswith(b"RFB 003."):
            return
        sink.write(b"\x01\x01")  # one security type: None
        sink.flush()
        if _read(source, 1) != b"\x01":
            return
        sink.write(struct.pack(">I", 0))
        sink.flush()
        _read(source, 1)  # ClientInit
        label = name.encode()
        sink.write(struct.pack(">HH", WIDTH, HEIGHT) + PIXEL_FORMAT +
                   struct.pack(">I", len(label)) + label)
        sink.flush()
        while True:
            kind = _read(source, 1)[0]
            if kind == 3:  # FramebufferUpdateRequest
                _read(source, 9)
                _frame(sink)
            elif kind == 0:  # SetPixelFormat
                _read(source, 19)
            elif kind == 2:  # SetEncodings
                _, count = struct.unpack(">BH", _read(source, 3))
                _read(source, 4 * count)
            elif kind == 4:  # KeyEvent
                _read(source, 7)
            elif kind == 5:  # PointerEvent
                _read(source, 5)
            elif kind == 6:  # ClientCutText
                _, length = struct.unpack(">3sI", _read(source, 7))
                _read(source, length)
            else:
                return
    except (EOFError, OSError):
        return


def _frame(sink: BinaryIO) -> None:
    row = b"".join(struct.pack("<I", (x * 255 // WIDTH) << 16 | 0x3366) for x in range(WIDTH))
    sink.write(struct.pack(">BxH", 0, 1) + struct.pack(">HHHHi", 0, 0, WIDTH, HEIGHT, 0) +
               row * HEIGHT)
    sink.flush()
