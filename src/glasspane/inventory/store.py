"""The server's image store: files sent to the API (disk images, container image archives,
template build contexts) and files tasks produce (exports, conversions, build outputs), kept
in DATA_DIR/images/ under a name, each with its size, SHA-256, detected format and who put
it there (in a sidecar NAME.meta.json).  A file is only ever visible complete: it is written
under a hidden temporary name and renamed into place (an upload cut off halfway leaves
nothing, and neither does one that would fill the disk).  Who put an image there may replace
or delete it, and admins may; other operators may not.

An image opened by the server may name another file only as the bare name of another stored
image (`references()`); errors raised while the server works on the store name stored images
by name, never by their path on the server (`confined`)."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TypeVar

from glasspane.errors import (
    Conflict,
    Forbidden,
    GlasspaneError,
    NoSpace,
    NotFound,
    UsageError,
)
from glasspane.images.references import StoreReferences
from glasspane.inventory.parsing import in_parser_thread

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
META = ".meta.json"
# Room left on the filesystem after an upload: a full disk breaks more than the upload.
RESERVE = 256 << 20
T = TypeVar("T")
# How much a chunked upload (no declared length) writes between two looks at the free space.
ROOM_CHECK_EVERY = 4 << 20
KIND_MEMBERS = 1000  # the members looked at to tell an OVA from a container image archive


@dataclass(frozen=True)
class StoredImage:
    name: str
    size: int
    sha256: str
    kind: str          # a disk format (qcow2, vhd, xva, ...), "container-archive" or "file"
    created_by: str
    created_at: str


@dataclass(frozen=True)
class Actor:
    """Who is changing the store: an operator replaces or deletes only the images they
    stored; an admin any (and the only one who may touch an image of unknown origin)."""

    name: str
    admin: bool = False

    def may_change(self, stored: StoredImage) -> bool:
        return self.admin or stored.created_by == self.name


class ImageStore:
    def __init__(self, data_dir: Path, reserve: int = RESERVE) -> None:
        self.root = data_dir / "images"
        self.reserve = reserve

    def references(self) -> StoreReferences:
        """The references policy for images the server opens from this store."""
        return StoreReferences(self.root)

    def _checked(self, name: str) -> str:
        if not NAME.match(name) or name.endswith(META):
            raise UsageError(f"invalid image name {name!r}",
                             hint="letters, digits, '.', '_', '+' and '-', at most 128, "
                                  "not starting with '.'")
        return name

    def path(self, name: str) -> Path:
        """The file of stored image `name` (NotFound if there is none)."""
        path = self.root / self._checked(name)
        if not path.is_file():
            raise NotFound(f"no image named {name!r} in the server's store",
                           hint="`glasspane --server URL image list`")
        return path

    def get(self, name: str) -> StoredImage:
        path = self.path(name)
        try:
            return StoredImage(**json.loads((self.root / (name + META)).read_text()))
        except (OSError, ValueError, TypeError):  # stored by hand: described (hashed) once
            described = self._describe(path, name, sha256_of(path), "unknown")
            self._write_meta(described)
            return described

    def list(self) -> list[StoredImage]:
        if not self.root.is_dir():
            return []
        return [self.get(p.name) for p in sorted(self.root.iterdir())
                if p.is_file() and NAME.match(p.name) and not p.name.endswith(META)]

    def check_new(self, name: str, replace: bool, actor: Actor) -> None:
        """May `actor` store an image as `name` (replacing one only if asked, and only their
        own unless an admin)?"""
        self._checked(name)
        if not (self.root / name).exists():
            return
        if not replace:
            raise Conflict(f"an image named {name!r} is already stored",
                           hint="delete it first, or choose another name")
        self._may_change(name, actor, "replace")

    def _may_change(self, name: str, actor: Actor, verb: str) -> None:
        stored = self.get(name)
        if not actor.may_change(stored):
            raise Forbidden(f"image {name!r} was stored by {stored.created_by}: {actor.name} "
                            f"may not {verb} it", hint="an operator changes only the images "
                                                       "they stored; ask them or an admin")

    def check_room(self, size: int | None, written: int = 0) -> None:
        """Refuse what would leave less than the reserve free: an upload of declared `size`
        before it starts, or a chunked one that has `written` bytes so far."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        free = shutil.disk_usage(self.root).free
        if size is not None and size + self.reserve > free:
            raise NoSpace(f"the image store has {free >> 20} MiB free; {size >> 20} MiB do "
                          f"not fit beside the {self.reserve >> 20} MiB it keeps free",
                          hint="delete stored images or make room on the server")
        if size is None and free < self.reserve:
            raise NoSpace(f"the image store's disk is full: {written >> 20} MiB received, "
                          f"{free >> 20} MiB left, {self.reserve >> 20} MiB are kept free; "
                          "nothing was stored",
                          hint="delete stored images or make room on the server")

    async def receive(self, name: str, chunks: AsyncIterator[bytes], actor: Actor,
                      limit: int, replace: bool = False) -> StoredImage:
        """Store what `chunks` yields as `name`, hashing on the way; over `limit` bytes, cut
        off, or about to fill the disk: nothing stored."""
        self.check_new(name, replace, actor)
        with self.staging() as work:
            temp, digest, size, unchecked = work / name, hashlib.sha256(), 0, 0
            with open(temp, "wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise UsageError(f"image {name!r} is over the store's limit of "
                                         f"{limit >> 30} GiB")
                    if unchecked == 0 or unchecked >= ROOM_CHECK_EVERY:
                        self.check_room(None, size)  # before the first write, then now and then
                        unchecked = 0
                    unchecked += len(chunk)
                    digest.update(chunk)
                    f.write(chunk)
            # Describing the file parses it: off the event loop, as every parse of an upload.
            return await in_parser_thread(
                lambda: self.adopt(temp, name, actor, replace, digest.hexdigest()))

    @contextmanager
    def staging(self) -> Iterator[Path]:
        """A private directory on the store's filesystem for files being made (moved into
        the store by `adopt`), removed with whatever is left in it."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        work = Path(tempfile.mkdtemp(dir=self.root, prefix=".staging-"))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def adopt(self, path: Path, name: str, actor: Actor, replace: bool = False,
              sha256: str | None = None) -> StoredImage:
        """Move the finished file `path` (on the store's filesystem) into the store as
        `name`, recorded as `actor`'s."""
        self.check_new(name, replace, actor)  # someone may have taken the name meanwhile
        described = self._describe(path, name, sha256 or sha256_of(path), actor.name)
        os.chmod(path, 0o600)
        os.replace(path, self.root / name)
        self._write_meta(described)
        return described

    def _write_meta(self, described: StoredImage) -> None:
        meta = self.root / f".{described.name}{META}.partial"
        meta.write_text(json.dumps(asdict(described)))
        os.chmod(meta, 0o600)
        os.replace(meta, self.root / (described.name + META))

    def delete(self, name: str, actor: Actor) -> None:
        path = self.path(name)
        self._may_change(name, actor, "delete")
        path.unlink()
        (self.root / (name + META)).unlink(missing_ok=True)

    def hide_paths(self, text: str, places: dict[str, Path] | None = None) -> str:
        """`text` with the store's files named by their names and the other `places`
        (DATA_DIR, CACHE_DIR: their names) instead of their paths on the server."""
        text = text.replace(f"{self.root}/", "").replace(str(self.root), "the image store")
        for label, place in (places or {}).items():
            text = text.replace(str(place), label)
        return text

    def confine(self, value: T, places: dict[str, Path] | None = None) -> T:
        """`value` (a task's result: dicts, lists, strings) with `hide_paths` applied."""
        if isinstance(value, str):
            return self.hide_paths(value, places)  # type: ignore[return-value]
        if isinstance(value, dict):
            return {k: self.confine(v, places) for k, v in value.items()}  # type: ignore
        if isinstance(value, list):
            return [self.confine(v, places) for v in value]  # type: ignore[return-value]
        return value

    @contextmanager
    def confined(self, places: dict[str, Path] | None = None) -> Iterator[None]:
        """Errors raised inside say no path of the server: the project's errors have their
        texts rewritten by `hide_paths`, and an OSError (which names its file) becomes one
        of them."""
        try:
            yield
        except GlasspaneError as exc:
            for attribute, text in list(vars(exc).items()):
                if isinstance(text, str):
                    setattr(exc, attribute, self.hide_paths(text, places))
            exc.args = tuple(self.hide_paths(a, places) if isinstance(a, str) else a
                             for a in exc.args)
            raise
        except OSError as exc:
            raise GlasspaneError(self.hide_paths(str(exc), places)) from None

    @staticmethod
    def _describe(path: Path, name: str, sha: str, user: str) -> StoredImage:
        stat = path.stat()
        return StoredImage(name, stat.st_size, sha, _kind(path), user,
                           dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).isoformat())


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _kind(path: Path) -> str:
    """What the file is: a disk format the toolkit recognizes, a container image archive
    (`docker save` / `podman save`), or just a file."""
    from glasspane.images import tar
    from glasspane.images.detect import probe
    from glasspane.images.source import ByteSource
    try:
        with ByteSource.open(str(path)) as source:
            kind = probe(source)
            if kind != "ova":  # every other ustar archive looks like an OVA to the probe
                return kind
            # The toolkit's own bounded reader, and only the first members: a hostile tar
            # (a negative pax size, 200,000 members) costs no more than a good one.
            names = [m.name for m, _ in zip(tar.iter_members(source), range(KIND_MEMBERS),
                                            strict=False)]
    except Exception:  # an unreadable or unrecognized file is a plain file
        return "file"
    if any(n.endswith(".ovf") for n in names):
        return "ova"
    return "container-archive" if "manifest.json" in names or "index.json" in names \
        else "tar"
