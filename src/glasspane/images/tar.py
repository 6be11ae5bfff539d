"""A defensive reader and a minimal writer for the tar archives that XVA and OVA files are.

glasspane never extracts an archive: members are located and then read in place.  Still, names
that would escape a directory (``..``, absolute paths) are refused, since a conforming XVA or
OVA never has them and their presence means a crafted file.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass

from glasspane.errors import FormatError, LimitExceeded
from glasspane.images.source import ByteSource

BLOCK = 512
MAX_META_BYTES = 1 << 20  # long names and pax records
# A field or pax value holding anything but digits is refused before `int()`, which would
# accept a sign: a negative size moves the reader back onto a header it already read, and
# that header then sends it back again, forever.
_OCTAL = re.compile(rb"[0-7]+")
_DECIMAL = re.compile(rb"[0-9]{1,20}")


@dataclass(frozen=True)
class TarMember:
    name: str
    offset: int      # of the data, within the archive
    size: int
    kind: str        # "file", "dir" or "other"
    header_offset: int
    mode: int = 0o644


def _number(field: bytes, path: str, offset: int) -> int:
    if field and field[0] == 0xFF:  # GNU base-256, negative
        raise FormatError("numeric field is negative", path=path, structure="tar header",
                          offset=offset)
    if field and field[0] & 0x80:  # GNU base-256 for sizes of 8 GiB and more
        return int.from_bytes(field[1:], "big")
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    if not _OCTAL.fullmatch(text):
        raise FormatError(f"numeric field {text[:16]!r} is not octal", path=path,
                          structure="tar header", offset=offset)
    return int(text, 8)


def _mode(field: bytes) -> int:
    """Permission bits; only an unpacked context uses them, so garbage is just the default."""
    text = field.split(b"\0", 1)[0].strip(b" \0")
    return int(text, 8) & 0o7777 if _OCTAL.fullmatch(text) else 0o644


def _checksum_ok(header: bytes) -> bool:
    stored = header[148:156].split(b"\0", 1)[0].strip(b" \0")
    try:
        expected = int(stored, 8)
    except ValueError:
        return False
    computed = sum(header[:148]) + 8 * 32 + sum(header[156:])
    return expected == computed


def safe_name(name: str, path: str, offset: int) -> str:
    if name.startswith("/") or any(part == ".." for part in name.split("/")):
        raise FormatError(f"member name {name!r} escapes the archive (absolute or '..')",
                          path=path, structure="tar member name", offset=offset,
                          hint="the archive is crafted or corrupt; it was not extracted")
    return name.removeprefix("./")


def iter_members(src: ByteSource) -> Iterator[TarMember]:
    pos = 0
    long_name: str | None = None
    pax_name: str | None = None
    pax_size: int | None = None
    while pos + BLOCK <= src.size:
        header = src.pread(pos, BLOCK, "tar header")
        if header == bytes(BLOCK):
            return
        if not _checksum_ok(header):
            raise FormatError("tar header checksum mismatch", path=src.path,
                              structure="tar header", offset=pos,
                              hint="the file is truncated, corrupt or not a tar archive")
        size = _number(header[124:136], src.path, pos)
        mode = _mode(header[100:108])
        typeflag = header[156:157]
        data_at = pos + BLOCK
        if data_at + size > src.size:
            raise FormatError(f"member of {size} bytes extends past the end of the file",
                              path=src.path, structure="tar member", offset=pos)
        if typeflag in (b"L", b"x", b"g"):
            if size > MAX_META_BYTES:
                raise LimitExceeded(f"tar metadata record of {size} bytes", path=src.path)
            meta = src.pread(data_at, size, "tar extended header")
            if typeflag == b"L":
                long_name = meta.split(b"\0", 1)[0].decode("utf-8", "replace")
            elif typeflag == b"x":
                pax_name, pax_size = _parse_pax(meta, src.path, pos)
        else:
            name = header[0:100].split(b"\0", 1)[0].decode("utf-8", "replace")
            if header[257:262] == b"ustar":
                prefix = header[345:500].split(b"\0", 1)[0].decode("utf-8", "replace")
                if prefix:
                    name = prefix + "/" + name
            name = pax_name or long_name or name
            if pax_size is not None:
                size = pax_size
                if data_at + size > src.size:
                    raise FormatError("member extends past the end of the file",
                                      path=src.path, structure="tar member", offset=pos)
            kind = ("file" if typeflag in (b"0", b"\0", b"7") else
                    "dir" if typeflag == b"5" else "other")
            yield TarMember(safe_name(name, src.path, pos), data_at, size, kind, pos, mode)
            long_name = pax_name = None
            pax_size = None
        following = data_at + (-(-size // BLOCK)) * BLOCK
        if following <= pos:  # sizes are checked non-negative; this keeps it so
            raise FormatError("member size moves the reader backwards", path=src.path,
                              structure="tar header", offset=pos)
        pos = following
    # Tolerate a missing end-of-archive marker (some writers omit it), never a torn header.
    if 0 < src.size - pos < BLOCK or src.size == 0:
        raise FormatError("archive ends inside a header block", path=src.path,
                          structure="tar", offset=pos, hint="the file is truncated")


def _parse_pax(meta: bytes, path: str, offset: int) -> tuple[str | None, int | None]:
    name: str | None = None
    size: int | None = None
    pos = 0
    while pos < len(meta):
        space = meta.find(b" ", pos)
        if space < 0:
            break
        digits = meta[pos:space]
        if not _DECIMAL.fullmatch(digits):
            raise FormatError("malformed pax record length", path=path,
                              structure="tar pax header", offset=offset)
        length = int(digits)
        if length <= space - pos:  # a record holds at least its own length and a space
            raise FormatError(f"pax record of {length} bytes is shorter than its header",
                              path=path, structure="tar pax header", offset=offset)
        record = meta[space + 1:pos + length].rstrip(b"\n")
        key, _, value = record.partition(b"=")
        if key == b"path":
            name = value.decode("utf-8", "replace")
        elif key == b"size":
            if not _DECIMAL.fullmatch(value):
                raise FormatError(f"pax size {value[:24]!r} is not a non-negative number",
                                  path=path, structure="tar pax header", offset=offset,
                                  hint="the archive is crafted or corrupt")
            size = int(value)
        pos += length
    return name, size


def header(name: str, size: int, mtime: int | None = None, mode: int = 0o644) -> bytes:
    """A ustar header for a regular file; sizes of 8 GiB and more use GNU base-256."""
    raw = bytearray(BLOCK)
    encoded = name.encode("utf-8")
    if len(encoded) > 100:
        raise ValueError(f"tar member name too long: {name}")
    raw[0:len(encoded)] = encoded
    raw[100:108] = f"{mode:07o}\0".encode()
    raw[108:116] = b"0000000\0"
    raw[116:124] = b"0000000\0"
    if size < 8 << 30:
        raw[124:136] = f"{size:011o}\0".encode()
    else:
        raw[124:136] = b"\x80" + size.to_bytes(11, "big")
    raw[136:148] = f"{int(time.time() if mtime is None else mtime):011o}\0".encode()
    raw[148:156] = b" " * 8
    raw[156:157] = b"0"
    raw[257:263] = b"ustar\0"
    raw[263:265] = b"00"
    raw[265:269] = b"root"
    raw[297:301] = b"root"
    checksum = sum(raw)
    raw[148:156] = f"{checksum:06o}\0 ".encode()
    return bytes(raw)


def padding(size: int) -> bytes:
    return bytes(-size % BLOCK)


END_OF_ARCHIVE = bytes(2 * BLOCK)
