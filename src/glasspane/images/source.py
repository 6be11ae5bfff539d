"""Bounded, positional reads from an image file or from a region of one (a disk inside an OVA).

Every format reader goes through `ByteSource` so that a read past the end of the data is reported
as a truncated structure, with the file and the offset, instead of a short buffer that a parser
might misread later.
"""

from __future__ import annotations

import os
from types import TracebackType

from glasspane.errors import FormatError, ImageError


class ByteSource:
    """A read-only window [base, base + size) of an open file, read with pread."""

    def __init__(self, fd: int, path: str, base: int = 0, size: int | None = None,
                 *, owns_fd: bool = False) -> None:
        self.fd = fd
        self.path = path
        self.base = base
        self.size = (os.fstat(fd).st_size - base) if size is None else size
        self._owns_fd = owns_fd

    @classmethod
    def open(cls, path: str) -> ByteSource:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            raise ImageError("no such file", path=path) from None
        except IsADirectoryError:
            raise ImageError("is a directory, not an image file", path=path) from None
        except OSError as exc:
            raise ImageError(f"cannot open: {exc.strerror}", path=path) from exc
        return cls(fd, path, owns_fd=True)

    def region(self, offset: int, size: int, name: str) -> ByteSource:
        """A sub-window, for an archive member; `name` describes it in error messages."""
        if offset < 0 or size < 0 or offset + size > self.size:
            raise FormatError("member extends past the end of the file", path=self.path,
                              structure=name, offset=offset)
        return ByteSource(self.fd, f"{self.path}[{name}]", self.base + offset, size)

    def pread(self, offset: int, length: int, structure: str) -> bytes:
        """Exactly `length` bytes at `offset`, or a FormatError naming `structure`."""
        if offset < 0 or length < 0 or offset + length > self.size:
            raise FormatError(f"truncated: needs {length} bytes but the file ends at {self.size}",
                              path=self.path, structure=structure, offset=offset)
        data = os.pread(self.fd, length, self.base + offset)
        if len(data) != length:
            raise FormatError("truncated while reading", path=self.path, structure=structure,
                              offset=offset)
        return data

    def pread_into(self, buf: bytearray | memoryview, offset: int, structure: str) -> None:
        """Fill `buf` from `offset`; used for large data reads without an extra copy."""
        length = len(buf)
        if offset < 0 or offset + length > self.size:
            raise FormatError(f"truncated: needs {length} bytes but the file ends at {self.size}",
                              path=self.path, structure=structure, offset=offset)
        got = os.preadv(self.fd, [buf], self.base + offset)
        if got != length:
            raise FormatError("truncated while reading", path=self.path, structure=structure,
                              offset=offset)

    def close(self) -> None:
        if self._owns_fd and self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> ByteSource:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()
