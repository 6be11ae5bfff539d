"""A defensive reader and a minimal writer for the tar archives that XVA and OVA files are.

glasspane never extracts an archive: members are located and then read in place.  Still, names
that would escape a directory (``..``, absolute paths) are refused, since a conforming XVA or
OVA never has them and their presence means a crafted file.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass

from glasspane.errors import FormatError, LimitExceeded
from glasspane.images.source import ByteSource

BLOCK = 512
MAX_META_BYTES = 1 << 20  # long names and pax records


@dataclass(frozen=True)
class TarMember:
    name: str
    offset: int      # of the data, within the archive
    size: int
    kind: str        # "file", "dir" or "other"
    header_offset: int


def _number(field: bytes, path: str, offset: int) -> int:
    if field and field[0] & 0x80:  # GNU base-256 for sizes of 8 GiB and more
        value = int.from_bytes(field[1:], "big")
        return value
    text = field.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise FormatError(f"numeric field {field!r} is not octal", path=path,
                          structure="tar header", offset=offset) from None


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
            yield TarMember(safe_name(name, src.path, pos), data_at, size, kind, pos)
            long_name = pax_name = None
            pax_size = None
        pos = data_at + (-(-size // BLOCK)) * BLOCK
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
        try:
            length = int(meta[pos:space])
        except ValueError:
            raise FormatError("malformed pax record", path=path, structure="tar pax header",
                              offset=offset) from None
        if length <= 0:
            break
        record = meta[space + 1:pos + length].rstrip(b"\n")
        key, _, value = record.partition(b"=")
        if key == b"path":
            name = value.decode("utf-8", "replace")
        elif key == b"size":
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
