"""Progress bars (bytes, throughput, ETA) on stderr; silent under --quiet or --json."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from glasspane.images.base import ProgressFn
from glasspane.images.convert import StartFn

stderr = Console(stderr=True)


@contextmanager
def byte_progress(enabled: bool) -> Iterator[StartFn]:
    """Yields a `start(total, label)` function as the image services expect.  Bars are drawn
    only on a terminal: in logs and pipes they would be noise."""
    if not enabled or not stderr.is_terminal:
        yield lambda total, label: (lambda n: None)
        return
    columns = (TextColumn("[bold]{task.description}"), BarColumn(),
               DownloadColumn(binary_units=True), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, console=stderr, transient=False) as progress:
        def start(total: int, label: str) -> ProgressFn:
            task = progress.add_task(label, total=total)
            return lambda n: progress.advance(task, n)
        yield start
