"""Progress bars (bytes, throughput, ETA) on stderr; silent under --quiet or --json."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from glasspane.images.base import ProgressFn
from glasspane.images.convert import StartFn

if TYPE_CHECKING:
    from rich.console import Console

# rich is imported on first use: scripts running with --quiet should not pay for it.
stderr: Console | None = None


def stderr_console() -> Console:
    global stderr  # noqa: PLW0603 - one console per process
    if stderr is None:
        from rich.console import Console
        stderr = Console(stderr=True)
    return stderr


@contextmanager
def byte_progress(enabled: bool) -> Iterator[StartFn]:
    """Yields a `start(total, label)` function as the image services expect.  Bars are drawn
    only on a terminal: in logs and pipes they would be noise."""
    if not enabled:
        yield lambda total, label: (lambda n: None)
        return
    if not stderr_console().is_terminal:
        yield lambda total, label: (lambda n: None)
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               DownloadColumn(binary_units=True), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr_console(), transient=False) as progress:
        def start(total: int, label: str) -> ProgressFn:
            task = progress.add_task(label, total=total)
            return lambda n: progress.advance(task, n)
        yield start


@contextmanager
def percent_progress(enabled: bool, label: str) -> Iterator[Callable[[int, str], None]]:
    """Yields `update(percent, message)` for one operation's (or task's) progress, drawn as
    a bar on a terminal only."""
    if not enabled or not stderr_console().is_terminal:
        yield lambda percent, message: None
        return
    from rich.progress import BarColumn, Progress, TextColumn
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}% {task.fields[msg]}"),
                  console=stderr_console()) as progress:
        bar = progress.add_task(label, total=100, msg="")
        yield lambda percent, message: progress.update(bar, completed=percent, msg=message)
