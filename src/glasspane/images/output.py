"""Outputs appear whole or not at all: each is written under a temporary name in the target's
directory and renamed into place only when every output of the operation is complete."""

from __future__ import annotations

import contextlib
import os
from types import TracebackType

from glasspane.errors import OutputError
from glasspane.images.base import ByteSink


class AtomicOutputs:
    """Context manager: `create(path)` gives a sink; all are renamed on success, removed on
    failure (including Ctrl-C)."""

    def __init__(self, overwrite: bool = False, sync: bool = True) -> None:
        self.overwrite = overwrite
        # fsync before the rename, so that a crash never leaves a renamed but incomplete file.
        self.sync = sync
        self._pending: list[tuple[int, str, str]] = []
        self._sinks: list[ByteSink] = []

    def create(self, path: str) -> ByteSink:
        if os.path.exists(path) and not self.overwrite:
            raise OutputError(f"{path} already exists", hint="use --force to replace it")
        directory = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(directory):
            raise OutputError(f"{path}: directory {directory} does not exist")
        temp = os.path.join(directory, f".{os.path.basename(path)}.part-{os.getpid()}")
        try:
            fd = os.open(temp, os.O_RDWR | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0),
                         0o644)
        except OSError as exc:
            raise OutputError(f"{path}: cannot create: {exc.strerror}") from exc
        self._pending.append((fd, temp, path))
        sink = ByteSink(fd, path)
        self._sinks.append(sink)
        return sink

    def __enter__(self) -> AtomicOutputs:
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        if et is None:
            self._commit()
        else:
            self._discard()

    def _commit(self) -> None:
        try:
            for sink in self._sinks:
                sink.flush()
            for fd, _temp, _path in self._pending:
                if self.sync:
                    os.fsync(fd)
            for fd, temp, path in self._pending:
                os.close(fd)
                os.replace(temp, path)
        except OSError as exc:
            self._discard()
            raise OutputError(f"cannot finish output: {exc.strerror}") from exc
        self._pending.clear()
        self._sinks.clear()

    def _discard(self) -> None:
        for fd, temp, _path in self._pending:
            with contextlib.suppress(OSError):
                os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temp)
        self._pending.clear()
        self._sinks.clear()
