"""The server's own limits: how long it waits for a request's head and body, how many
connections and event streams it holds, how many password hashes run at once, and which
proxies may say who the client is.  One `ServerLimits` per application (tests make them
small); the transport (`api.transport`), the middlewares and the routers read it from
`app.state.limits`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TypeVar

from glasspane.errors import Busy, RateLimited

T = TypeVar("T")


@dataclass(frozen=True)
class ServerLimits:
    header_timeout: float = 10.0      # s from a connection (or its last answer) to a whole head
    body_timeout: float = 30.0        # s a request body may go without a byte
    max_connections: int = 1000       # open at once; more are answered 503 and closed
    streams_per_user: int = 8         # live event streams of one user
    login_hashes: int = 2             # password hashes (Argon2, 64 MiB each) at once
    login_queue: int = 32             # logins waiting for a hash slot; more are answered 503
    login_wait: float = 10.0          # s a login waits for a slot before a 503
    trusted_proxies: tuple[str, ...] = ()  # addresses whose X-Forwarded-For is believed


class LoginGate:
    """Runs password hashing (logins, password changes) in an executor of its own with at
    most `login_hashes` at once, so that a burst of logins neither starves the shared
    thread pool nor takes 64 MiB per attempt; a login that would wait too long (or join too
    long a queue) is refused with a Busy carrying Retry-After.  `running`, `waiting` and
    `peak` say what it is doing (the tests watch them)."""

    def __init__(self, limits: ServerLimits) -> None:
        self.limits = limits
        self._executor: ThreadPoolExecutor | None = None
        # The slots belong to one event loop (a test client runs a loop per block).
        self._slots: tuple[asyncio.AbstractEventLoop, asyncio.Semaphore] | None = None
        self.running = self.waiting = self.peak = 0

    def _slots_here(self, loop: asyncio.AbstractEventLoop) -> asyncio.Semaphore:
        if self._slots is None or self._slots[0] is not loop:
            self._slots = loop, asyncio.Semaphore(self.limits.login_hashes)
        return self._slots[1]

    async def run(self, work: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        slots = self._slots_here(loop)
        if not slots.locked():
            # A free slot is taken at once, never counted as waiting: counted, a second login
            # arriving while the first one's acquire yields found the queue full and got a 503.
            await slots.acquire()
        else:
            if self.waiting >= self.limits.login_queue:
                raise Busy("too many logins at once", retry_after=2)
            self.waiting += 1
            try:
                await asyncio.wait_for(slots.acquire(), self.limits.login_wait)
            except TimeoutError:
                raise Busy("too many logins at once", retry_after=2) from None
            finally:
                self.waiting -= 1
        self.running += 1
        self.peak = max(self.peak, self.running)

        def done(_: object) -> None:
            # The slot is freed when the hash ends, not when its caller goes away: a client
            # hanging up must not let another hash start beside the one still running.
            def release() -> None:
                self.running -= 1
                slots.release()
            loop.call_soon_threadsafe(release)

        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=self.limits.login_hashes,
                                                thread_name_prefix="glasspane-login")
        future = self._executor.submit(work)
        future.add_done_callback(done)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Let the hashing threads go (a later login starts new ones)."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False)


class LoginLimiter:
    """At most MAX_FAILURES failed logins per client address and user name per WINDOW s.
    An attempt is reserved before its password is checked (`attempt`), so concurrent
    wrong passwords cannot all pass the check before the first failure is counted."""

    MAX_FAILURES = 5
    WINDOW = 60.0
    KEYS = 50_000  # past this many (address, name) pairs, the ones with no recent failure go

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._pending: dict[tuple[str, str], int] = {}

    def _recent(self, key: tuple[str, str], now: float) -> list[float]:
        recent = [t for t in self._failures.get(key, ()) if now - t < self.WINDOW]
        if recent:
            self._failures[key] = recent
        else:
            self._failures.pop(key, None)
        return recent

    def _sweep(self, now: float) -> None:
        if len(self._failures) > self.KEYS:
            for key in list(self._failures):
                self._recent(key, now)

    @contextmanager
    def attempt(self, key: tuple[str, str]) -> Iterator[Attempt]:
        """Reserve one attempt for `key` (RateLimited when the failures and the attempts
        in flight already reach the limit); the block says how it ended on the Attempt it
        is given.  An attempt that ends without saying (the server was busy) counts as
        nothing."""
        with self._lock:
            now = self._clock()
            self._sweep(now)
            recent = self._recent(key, now)
            pending = self._pending.get(key, 0)
            if len(recent) + pending >= self.MAX_FAILURES:
                wait = int(self.WINDOW - (now - recent[0])) + 1 if recent else 1
                raise RateLimited(f"too many failed logins; try again in {wait} s",
                                  retry_after=wait)
            self._pending[key] = pending + 1
        attempt = Attempt()
        try:
            yield attempt
        finally:
            with self._lock:
                left = self._pending.get(key, 1) - 1
                if left:
                    self._pending[key] = left
                else:
                    self._pending.pop(key, None)
                if attempt.outcome is True:
                    self._failures.pop(key, None)
                elif attempt.outcome is False:
                    self._failures.setdefault(key, []).append(self._clock())


class Attempt:
    outcome: bool | None = None

    def succeeded(self) -> None:
        self.outcome = True

    def failed(self) -> None:
        self.outcome = False
