"""Which other files an image may have read through it: a qcow2's backing file, a differencing
VHD's parent.  The file names such a reference, and whoever wrote the file chose that name.

One policy object goes from whoever opens an image down to the reader that meets a reference,
so no caller between them can forget it:

- `FOLLOW_ANYWHERE`: the local CLI.  The images are the user's own files, and so are the files
  they name: resolved beside the image, as qemu does.
- `StoreReferences(root)`: the server.  Only the bare name of another image in its store, a
  regular file directly in it (no symbolic link, no directory, no `..`): anything else would
  let an uploaded image read the server's own files (its database, keys, passwords) into a
  conversion's output.
- `STANDALONE`: the default wherever a caller did not say, and `INSIDE_ARCHIVE`: a disk inside
  an OVA, which can never name a file.

Refusals never name the file a reference points at beyond a bare name, never show its bytes or
its identity (a VHD's UUID), so that probing the server's disk through error messages learns
nothing.
"""

from __future__ import annotations

import errno
import os
import stat
from abc import ABC, abstractmethod

from glasspane.errors import FormatError, ImageError, ReferenceRefused
from glasspane.images.source import ByteSource

_HINT_STANDALONE = ("make it standalone first where its backing file is yours (`glasspane "
                    "image convert` on your machine follows it), then send that")


class References(ABC):
    """How the references an image makes are resolved."""

    @abstractmethod
    def open(self, referrer: ByteSource, names: list[str], what: str,
             structure: str) -> ByteSource:
        """The first of `names` (candidates for one reference, most trusted first) that
        resolves, opened for reading.  `what` is the reference ("backing file", "parent") and
        `structure` where the image keeps it, both for messages.  Raises ReferenceRefused,
        or ImageError/FormatError when nothing is found."""


class FollowAnywhere(References):
    """The user's own files: a relative name is resolved beside the image."""

    def open(self, referrer: ByteSource, names: list[str], what: str,
             structure: str) -> ByteSource:
        here = os.path.dirname(os.path.abspath(referrer.path))
        looked = [os.path.normpath(os.path.join(here, name)) for name in names]
        for path in looked:
            if os.path.isfile(path):
                return ByteSource.open(path)
        raise FormatError(f"{what} not found (looked for: {', '.join(looked) or 'no name'})",
                          path=referrer.path, structure=structure,
                          hint=f"put the {what} where the image names it")


class Standalone(References):
    """No references at all."""

    def __init__(self, reason: str, hint: str | None = _HINT_STANDALONE) -> None:
        self.reason = reason
        self.hint = hint

    def open(self, referrer: ByteSource, names: list[str], what: str,
             structure: str) -> ByteSource:
        raise ReferenceRefused(f"{structure}: the image names a {what}; {self.reason}",
                               path=referrer.path, hint=self.hint)


def bare_name(name: str) -> bool:
    """A name that can only mean a file directly in one directory."""
    return (0 < len(name) <= 255 and name not in (".", "..") and not name.startswith(".")
            and not any(c in name for c in "/\\\0") and name.isprintable())


class StoreReferences(References):
    """Another image of the store at `root`, by its bare name: a regular file directly in
    `root`, opened without following a symbolic link (checked on the opened file itself, so
    a link swapped in meanwhile is refused too)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)

    def open(self, referrer: ByteSource, names: list[str], what: str,
             structure: str) -> ByteSource:
        bare = list(dict.fromkeys(n for n in names if bare_name(n)))
        if not bare:
            # The names themselves are not repeated: they may be paths on this server.
            raise ReferenceRefused(
                f"{structure}: the image names a {what} outside the image store; the server "
                f"reads only another stored image, named by its bare name", path=referrer.path,
                hint=_HINT_STANDALONE + ", or store the " + what + " too and name it by its "
                "bare name")
        for name in bare:
            source = self._open(referrer, name, what, structure)
            if source is not None:
                return source
        raise ImageError(f"{structure}: the {what} {bare[0]!r} is not in the image store",
                         path=referrer.path, hint=f"store the {what} under that name first")

    def _open(self, referrer: ByteSource, name: str, what: str,
              structure: str) -> ByteSource | None:
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
        try:  # the store's own directory is the server's setting: it may be reached by a link
            root = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return None
        try:
            fd = os.open(name, flags, dir_fd=root)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise ReferenceRefused(
                    f"{structure}: the {what} {name!r} is a symbolic link in the image store; "
                    "only regular files are followed", path=referrer.path) from None
            raise ReferenceRefused(f"{structure}: the {what} {name!r} cannot be opened",
                                   path=referrer.path) from None
        finally:
            os.close(root)
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise ReferenceRefused(f"{structure}: the {what} {name!r} is not a regular file",
                                   path=referrer.path)
        os.set_blocking(fd, True)
        return ByteSource(fd, os.path.join(self.root, name), owns_fd=True)


FOLLOW_ANYWHERE = FollowAnywhere()
STANDALONE = Standalone("only standalone images are read here")
INSIDE_ARCHIVE = Standalone("a disk inside an archive cannot have one",
                            hint="rebuild the archive from standalone disks")
