"""Ordered parallel map for the CPU-heavy steps of a conversion (hashing, compression).

hashlib and zlib release the GIL on large buffers, so plain threads use both cores; results come
back in submission order, and at most `window` items are in flight, which bounds memory.
"""

from __future__ import annotations

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
