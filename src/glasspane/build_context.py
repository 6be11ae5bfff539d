"""A spec's context: the directory of a template spec or an app spec sent to a glasspane
server as one tar archive (like a container build's context), and unpacked there
defensively.

Packed: every file under the spec's directory except earlier builds' outputs
(`output-*/`, `*.build.log`) and hidden files; a spec naming a file outside its directory
is refused, since the server could not see it.  Unpacked: only regular files and
directories, no absolute names, no '..', no links (tarfile's data filter), at most
MAX_MEMBERS members and `limit` bytes in all."""

from __future__ import annotations

import os
import tarfile
from collections.abc import Iterable
from pathlib import Path

from glasspane.errors import ImageError, UsageError

MAX_MEMBERS = 100_000


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
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for relative in context_files(spec, referenced):
            # Links are followed here: the server accepts regular files only.
            tar.add(base / relative, arcname=str(relative), recursive=False)
    return archive.stat().st_size


def unpack_context(archive: Path, destination: Path, limit: int) -> None:
    """Extract a received context; ImageError naming the member for anything but
    plain files and directories inside `destination`, or over the limits."""
    try:
        with tarfile.open(archive, "r:") as tar:
            members, total = [], 0
            for member in tar:
                members.append(member)
                total += member.size
                if len(members) > MAX_MEMBERS:
                    raise ImageError(f"context {archive.name}: over {MAX_MEMBERS} "
                                     "members")
                if total > limit:
                    raise ImageError(f"context {archive.name}: over {limit} bytes "
                                     f"unpacked (at member {member.name!r})")
                if member.name.startswith("/") or ".." in Path(member.name).parts:
                    raise ImageError(f"context {archive.name}: member {member.name!r} is "
                                     "absolute or outside the destination")
                if not (member.isfile() or member.isdir()):
                    raise ImageError(f"context {archive.name}: member {member.name!r} "
                                     "is not a regular file or directory")
            try:
                tar.extractall(destination, members=members, filter="data")
            except tarfile.FilterError as exc:
                raise ImageError(f"context {archive.name}: {exc}") from None
    except tarfile.ReadError as exc:
        raise ImageError(f"context {archive.name} is not a tar archive: {exc}") from None
