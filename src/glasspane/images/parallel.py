"""Ordered parallel map for the CPU-heavy steps of a conversion (hashing, compression).

hashlib and zlib release the GIL on large buffers, so plain threads use both cores; results come
back in submission order, and at most `window` items are in flight, which bounds memory.
"""

from __future__ import annotations

import queue
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def ordered_map(fn: Callable[[T], R], items: Iterable[T], workers: int = 2,
                window: int = 8) -> Iterator[R]:
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="glasspane-io") as pool:
        pending: deque[Future[R]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(fn, item))
                if len(pending) >= window:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for fut in pending:
                fut.cancel()


_DONE = object()


def prefetched(items: Iterable[T], depth: int = 8) -> Iterator[T]:
    """Produce `items` in a background thread, up to `depth` ahead of the consumer, so that
    reading the source overlaps writing the output (both release the GIL in their syscalls).
    Exceptions reach the consumer in order; a consumer that stops early stops the producer."""
    slots: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if not _put(slots, item, stop):
                    return
            _put(slots, _DONE, stop)
        except BaseException as exc:  # handed to the consumer, raised there
            _put(slots, _Failure(exc), stop)

    worker = threading.Thread(target=produce, name="glasspane-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is _DONE:
                return
            if isinstance(item, _Failure):
                raise item.exc
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join()


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _put(slots: queue.Queue[object], item: object, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            slots.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
