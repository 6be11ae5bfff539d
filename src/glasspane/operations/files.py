"""Where an operation's files are.  A command's file fields (`Operation.files`, `.output`)
name stored images on a server: opened with the store's references policy (a backing file
only as another stored image), outputs kept in the store as the caller's, every result and
error naming them by name, never by the server's paths.  Run by the CLI on this machine, the
same fields name the user's own files, read wherever they point (FOLLOW_ANYWHERE: a backing
file is theirs too) and written where they say.  A handler asks `files_of(context)` and never
knows which it has; this module is the one place the two differ."""

from __future__ import annotations

import getpass
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

from glasspane.enums import Role
from glasspane.errors import OutputError
from glasspane.images.convert import StartFn
from glasspane.images.references import FOLLOW_ANYWHERE
from glasspane.inventory.store import Actor, ImageStore, StoredImage, _kind
from glasspane.operations.catalogue import Admission, Context

T = TypeVar("T")


class Files(Protocol):
    def path(self, name: str) -> Path:
        """The file a command's field names (NotFound when there is none)."""
        ...

    def references(self) -> Any:
        """The backing files and parents the file may name."""
        ...

    def check_new(self, name: str, replace: bool) -> None:
        """Refuse an output that exists (unless `replace`) or is not the caller's."""
        ...

    def staging(self, name: str) -> Any:
        """A context manager: a directory on the output's filesystem to write `name` in."""
        ...

    def filename(self, name: str) -> str:
        """The file name to write output `name` as, in its staging directory."""
        ...

    def keep(self, written: Path, replace: bool, sha256: str | None = None) -> StoredImage:
        """Move a written file where its output goes; what it now is."""
        ...

    def confined(self) -> Any:
        """A context manager under which errors say no path the caller should not see."""
        ...

    def confine(self, value: T) -> T: ...


class StoreFiles:
    """The server's image store, acted on by `actor`."""

    def __init__(self, store: ImageStore, actor: Actor, places: Mapping[str, Path]) -> None:
        self.store, self.actor, self.places = store, actor, dict(places)

    def path(self, name: str) -> Path:
        return self.store.path(name)

    def references(self) -> Any:
        return self.store.references()

    def check_new(self, name: str, replace: bool) -> None:
        self.store.check_new(name, replace, self.actor)

    @contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        with self.store.staging() as work:
            yield work

    def filename(self, name: str) -> str:
        return name

    def keep(self, written: Path, replace: bool, sha256: str | None = None) -> StoredImage:
        return self.store.adopt(written, written.name, self.actor, replace, sha256)

    def confined(self) -> Any:
        return self.store.confined(self.places)

    def confine(self, value: T) -> T:
        return self.store.confine(value, self.places)


class LocalFiles:
    """The user's files on this machine: each field holds a handle (`handles`: handle to the
    path the user gave), so the command validates as it would on a server."""

    def __init__(self, handles: Mapping[str, str]) -> None:
        self.handles = dict(handles)
        self.output: Path | None = None

    def path(self, name: str) -> Path:
        if name in self.handles:
            return Path(self.handles[name])
        # Another output of the same command (a VM archive's disks): beside the one named.
        return self.output.with_name(name) if self.output is not None else Path(name)

    def references(self) -> Any:
        return FOLLOW_ANYWHERE

    def check_new(self, name: str, replace: bool) -> None:
        if self.path(name).exists() and not replace:
            raise OutputError(f"{self.path(name)} already exists",
                              hint="use --force to replace it")

    @contextmanager
    def staging(self, name: str) -> Iterator[Path]:
        # Beside the output: moving a finished file into place is then a rename.
        self.output = self.path(name)
        parent = self.output.absolute().parent
        work = Path(tempfile.mkdtemp(dir=parent, prefix=".glasspane-"))
        try:
            yield work
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def filename(self, name: str) -> str:
        return self.path(name).name

    def keep(self, written: Path, replace: bool, sha256: str | None = None) -> StoredImage:
        target = written.parent.parent / written.name
        if target.exists() and not replace:
            raise OutputError(f"{target} already exists", hint="use --force to replace it")
        os.replace(written, target)
        # Named as the user named it: the path they gave, or one beside it.
        shown = self.output.with_name(target.name) if self.output is not None else target
        return StoredImage(str(shown), target.stat().st_size, sha256 or "", _kind(target),
                           getpass.getuser(), "")

    @contextmanager
    def confined(self) -> Iterator[None]:
        yield  # the user's own paths are theirs to see

    def confine(self, value: T) -> T:
        return value


def store_of(settings: Any) -> ImageStore:
    return ImageStore(settings.data_dir, settings.store_reserve)


def actor_of(context: Context | Admission) -> Actor:
    return Actor(context.caller.name, context.caller.role is Role.ADMIN)


def files_of(context: Context) -> Files:
    """The context's files: those the CLI gave, or the server's store as the caller's."""
    if context.files is not None:
        files: Files = context.files
        return files
    places = {"DATA_DIR": context.settings.data_dir, "CACHE_DIR": context.settings.cache_dir}
    return StoreFiles(store_of(context.settings), actor_of(context), places)


def bytes_of(context: Context) -> StartFn:
    """A `start(total, label)` for the image toolkit: the CLI's byte bar here, the task's
    0-100 on a server, nothing otherwise."""
    if context.start is not None:
        start: StartFn = context.start
        return start
    if context.task is not None:
        from glasspane.inventory.store_handlers import byte_progress
        return byte_progress(context.task)
    return lambda total, label: (lambda n: None)
