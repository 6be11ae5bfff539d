"""Where the server parses files it did not write (a stored image's facts, an upload's kind, a
context's spec): in worker threads, never on the event loop, and at most PARSERS at a time.

The parses draw on a limiter of their own, not on the thread pool that runs the API's plain
functions (`/health` among them): a few viewers asking for the facts of hostile files can
occupy these threads only, and every other request still finds one.  Each parser bounds its
own work (sizes, counts, depths), which is what ends a parse; the threads only keep a slow one
off the loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar
from weakref import WeakKeyDictionary

import anyio
import anyio.to_thread

PARSERS = 4
T = TypeVar("T")

# One limiter per event loop: a limiter belongs to the loop that made it (tests run servers
# on loops of their own).
_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = \
    WeakKeyDictionary()


async def in_parser_thread(parse: Callable[[], T]) -> T:
    """`parse()` in a worker thread, waiting (without holding a thread) for a free slot."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = anyio.CapacityLimiter(PARSERS)
    return await anyio.to_thread.run_sync(parse, limiter=limiter)
