"""A spec's context: the directory of a template spec or an app spec sent to a glasspane
server as one tar archive (like a container build's context), and unpacked there
defensively.

Packed: every file under the spec's directory except earlier builds' outputs
(`output-*/`, `*.build.log`) and hidden files; a spec naming a file outside its directory
is refused, since the server could not see it.  Unpacked by the image toolkit's own tar
reader (Python's tarfile follows a negative pax size backwards forever): the whole archive is
read and checked first (only regular files and directories, no absolute names, no '..', at
most `max_members` members and `limit` bytes in all), and only then written, file by file,
into a new directory that a failure removes."""

from __future__ import annotations

import os
import shutil
import tarfile
from collections.abc import Callable, Iterable
from pathlib import Path, PurePosixPath

from glasspane.errors import FormatError, ImageError, LimitExceeded, OutputError, UsageError
from glasspane.images import tar
from glasspane.images.source import ByteSource
from glasspane.settings import DEFAULT_CONTEXT_LIMIT, DEFAULT_CONTEXT_MEMBERS

COPY_BYTES = 4 << 20


def context_files(spec: Path, referenced: Iterable[Path]) -> list[Path]:
    """The files sent with `spec` (which names the files `referenced`), relative to its
    directory."""
    base = spec.parent.resolve()
    for path in referenced:
        if not path.resolve().is_relative_to(base):
            raise UsageError(f"{spec} names {path}, outside the spec's directory: a server "
                             "receives only that directory", hint=f"copy it into {base}")
    files = []
    for root, dirs, names in os.walk(base):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and not (here == base and d.startswith("output-")))
        files += [(here / n).relative_to(base) for n in sorted(names)
                  if not n.startswith(".") and not n.endswith(".build.log")
                  and (here / n).is_file()]
    return sorted(files)


def pack_context(spec: Path, referenced: Iterable[Path], archive: Path) -> int:
    """Write the context of `spec` to `archive`; its size in bytes."""
    base = spec.parent.resolve()
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as packed:
        for relative in context_files(spec, referenced):
            # Links are followed here: the server accepts regular files only.
            packed.add(base / relative, arcname=str(relative), recursive=False)
    return archive.stat().st_size


def unpack_context(archive: Path, destination: Path, limit: int = DEFAULT_CONTEXT_LIMIT,
                   max_members: int = DEFAULT_CONTEXT_MEMBERS,
                   room: Callable[[int], None] | None = None) -> None:
    """Extract a received context into `destination`; ImageError naming the member for
    anything but plain files and directories inside it, LimitExceeded over the limits, and
    nothing written in either case (nor left behind by a write that fails).  `room(bytes)`,
    given, is asked first whether the unpacked files fit (it raises if not)."""
    name = archive.name
    with ByteSource.open(str(archive)) as source:
        members = _checked_members(source, name, limit, max_members)
        if room is not None:
            room(sum(m.size for m in members))
        destination.mkdir(parents=True, exist_ok=True, mode=0o700)
        before = set(os.listdir(destination))
        try:
            for member in members:
                _write(source, member, destination, name)
        except BaseException:
            for entry in set(os.listdir(destination)) - before:
                target = destination / entry
                if target.is_dir() and not target.is_symlink():
                    shutil.rmtree(target, ignore_errors=True)
                else:
                    target.unlink(missing_ok=True)
            raise


def _checked_members(source: ByteSource, name: str, limit: int, max_members: int
                     ) -> list[tar.TarMember]:
    members: list[tar.TarMember] = []
    total = 0
    try:
        for member in tar.iter_members(source):
            members.append(member)
            total += member.size
            if len(members) > max_members:
                raise LimitExceeded(f"context {name}: over {max_members} members",
                                    hint="the server's GLASSPANE_CONTEXT_MEMBERS")
            if total > limit:
                raise LimitExceeded(f"context {name}: over {limit} bytes unpacked (at member "
                                    f"{member.name[:200]!r})",
                                    hint="the server's GLASSPANE_CONTEXT_LIMIT")
            if member.kind not in ("file", "dir"):
                raise ImageError(f"context {name}: member {member.name[:200]!r} is not a "
                                 "regular file or directory")
            if "\0" in member.name:
                raise ImageError(f"context {name}: member {member.name[:200]!r} has a NUL "
                                 "in its name")
    except FormatError as exc:
        if exc.structure == "tar member name":
            raise ImageError(f"context {name}: {exc.message} (outside the destination)"
                             ) from None
        raise ImageError(f"context {name} is not a tar archive, or a damaged one: "
                         f"{exc.message}", hint=exc.hint) from None
    return members


def _write(source: ByteSource, member: tar.TarMember, destination: Path, name: str) -> None:
    parts = PurePosixPath(member.name).parts
    if not parts:  # "./": the destination itself
        return
    target = destination.joinpath(*parts)
    try:
        if member.kind == "dir":
            target.mkdir(parents=True, exist_ok=True, mode=0o755)
            return
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
        # Executable scripts stay executable; nothing else of the archive's modes is kept.
        mode = 0o755 if member.mode & 0o100 else 0o644
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, mode)
    except FileExistsError:
        raise ImageError(f"context {name}: member {member.name[:200]!r} appears twice, or "
                         "as both a file and a directory") from None
    except NotADirectoryError:
        raise ImageError(f"context {name}: member {member.name[:200]!r} is inside a "
                         "member that is a file") from None
    except OSError as exc:
        raise OutputError(f"context {name}: cannot write {member.name[:200]!r}: "
                          f"{exc.strerror}") from None
    try:
        for at in range(0, member.size, COPY_BYTES):
            data = memoryview(source.pread(member.offset + at,
                                           min(COPY_BYTES, member.size - at), member.name))
            while data:
                data = data[os.write(fd, data):]
    except OSError as exc:
        raise OutputError(f"context {name}: cannot write {member.name[:200]!r}: "
                          f"{exc.strerror}") from None
    finally:
        os.close(fd)
