"""The server's image store: files sent to the API (disk images, container image archives,
template build contexts) and files tasks produce (exports, conversions, build outputs), kept
in DATA_DIR/images/ under a name, each with its size, SHA-256, detected format and who put
it there.  A file is only ever visible complete: it is written under a hidden temporary
name and renamed into place (an upload cut off halfway leaves nothing)."""

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

from glasspane.errors import Conflict, NotFound, OutputError, UsageError
from glasspane.inventory.parsing import in_parser_thread

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
META = ".meta.json"
# Room left on the filesystem after an upload: a full disk breaks more than the upload.
RESERVE = 256 << 20
KIND_MEMBERS = 1000  # the members looked at to tell an OVA from a container image archive


@dataclass(frozen=True)
class StoredImage:
    name: str
    size: int
    sha256: str
    kind: str          # a disk format (qcow2, vhd, xva, ...), "container-archive" or "file"
    created_by: str
    created_at: str


class ImageStore:
    def __init__(self, data_dir: Path) -> None:
        self.root = data_dir / "images"

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

    def check_new(self, name: str, replace: bool = False) -> None:
        self._checked(name)
        if not replace and (self.root / name).exists():
            raise Conflict(f"an image named {name!r} is already stored",
                           hint="delete it first, or choose another name")

    def check_room(self, size: int | None) -> None:
        """Refuse an upload that cannot fit (when its size is declared)."""
        if size is None:
            return
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        free = shutil.disk_usage(self.root).free
        if size + RESERVE > free:
            raise OutputError(f"the image store {self.root} has {free >> 20} MiB free; "
                              f"{size >> 20} MiB do not fit",
                              hint="delete stored images or make room on the server")

    async def receive(self, name: str, chunks: AsyncIterator[bytes], user: str,
                      limit: int, replace: bool = False) -> StoredImage:
        """Store what `chunks` yields as `name`, hashing on the way; over `limit` bytes or
        cut off: nothing stored."""
        self.check_new(name, replace)
        with self.staging() as work:
            temp, digest, size = work / name, hashlib.sha256(), 0
            with open(temp, "wb") as f:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise UsageError(f"image {name!r} is over the store's limit of "
                                         f"{limit >> 30} GiB")
                    digest.update(chunk)
                    f.write(chunk)
            # Describing the file parses it: off the event loop, as every parse of an upload.
            return await in_parser_thread(
                lambda: self.adopt(temp, name, user, replace, digest.hexdigest()))

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

    def adopt(self, path: Path, name: str, user: str, replace: bool = False,
              sha256: str | None = None) -> StoredImage:
        """Move the finished file `path` (on the store's filesystem) into the store as
        `name`."""
        self.check_new(name, replace)  # someone may have taken the name meanwhile
        described = self._describe(path, name, sha256 or sha256_of(path), user)
        os.chmod(path, 0o600)
        os.replace(path, self.root / name)
        self._write_meta(described)
        return described

    def _write_meta(self, described: StoredImage) -> None:
        meta = self.root / f".{described.name}{META}.partial"
        meta.write_text(json.dumps(asdict(described)))
        os.chmod(meta, 0o600)
        os.replace(meta, self.root / (described.name + META))

    def delete(self, name: str) -> None:
        path = self.path(name)
        path.unlink()
        (self.root / (name + META)).unlink(missing_ok=True)

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
