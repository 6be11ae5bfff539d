"""Answers of the inventory listings (hosts, VMs, containers, templates, apps), kept per
path and query until the inventory changes: many clients polling the same pages (every open
pane, scripts, monitoring) cost one database read per change instead of one per request.

Pure ASGI, in front of the routing: a hit is a dictionary lookup.  Only an authenticated
caller is answered from it (the token cache says who; a token it lacks is looked up in the
database once, however many requests carry it; a token that is no user's goes on to the
application, which refuses it), every listing needs only the viewer role that every user
has, entries are kept per role (an admin's listing of hosts shows more of their URIs than
a viewer's), and an entry is used only while the inventory generation it was computed under is
current and for at most `ttl` seconds: the bound for changes another instance sharing a
PostgreSQL database makes without announcing an event (10 s, the sync's own period); on
SQLite, which one instance alone serves, a minute.

A page asked for again while it is being read waits for that read and is answered from it:
every open pane asks for the same pages when the inventory changes, and the listings are
read off the event loop, where each read at once would cost the database and the
interpreter lock again."""

from __future__ import annotations

import asyncio
import re
import time
from collections import OrderedDict
from dataclasses import dataclass

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glasspane.api.deps import Services, token_of

_now = time.monotonic  # a module-level name: a test moves the clock of the cache alone
LISTINGS = re.compile(r"^/api/v1/(hosts|vms|containers|templates|apps)$")


@dataclass(frozen=True)
class _Entry:
    generation: int
    expires: float
    headers: list[tuple[bytes, bytes]]
    body: bytes


class ListingCache:
    MAX_BYTES = 64 << 20

    def __init__(self, app: ASGIApp, services: Services, ttl: float) -> None:
        self.app, self.services, self.ttl = app, services, ttl
        self.generation = services.generation
        self._entries: OrderedDict[tuple[str, str, bytes], _Entry] = OrderedDict()
        self._bytes = 0
        self._reading: dict[tuple[str, str, bytes], asyncio.Future[None]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET" or \
                not LISTINGS.match(scope["path"]):
            await self.app(scope, receive, send)
            return
        secret, _ = token_of(Request(scope))
        user = await self.services.tokens.resolve(secret, self.services) if secret else None
        if user is None:  # no such token: the application says so
            await self.app(scope, receive, send)
            return
        key = (user.role, scope["path"], scope["query_string"])
        entry = self._fresh(key)
        reading = self._reading.get(key)
        if entry is None and reading is not None:
            await asyncio.shield(reading)
            entry = self._fresh(key)  # None: that read failed or the inventory moved on
        if entry is not None:
            self._entries.move_to_end(key)
            await send({"type": "http.response.start", "status": 200,
                        "headers": entry.headers})
            await send({"type": "http.response.body", "body": entry.body})
            return
        done = asyncio.get_running_loop().create_future()
        self._reading[key] = done
        try:
            await self._fill(key, scope, receive, send)
        finally:
            if self._reading.get(key) is done:
                del self._reading[key]
            done.set_result(None)

    def _fresh(self, key: tuple[str, str, bytes]) -> _Entry | None:
        entry = self._entries.get(key)
        if entry is not None and entry.generation == self.generation.value and \
                entry.expires > _now():
            return entry
        return None

    async def _fill(self, key: tuple[str, str, bytes], scope: Scope, receive: Receive,
                    send: Send) -> None:
        started = self.generation.value
        status, headers, chunks = 0, [], []

        async def keeping(message: Message) -> None:
            nonlocal status, headers
            if message["type"] == "http.response.start":
                status, headers = message["status"], list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, keeping)
        # Computed entirely under one generation, or not kept: a change during the read
        # may or may not be in it.
        if status == 200 and self.generation.value == started:
            self._store(key, _Entry(started, _now() + self.ttl, headers,
                                    b"".join(chunks)))

    def _store(self, key: tuple[str, str, bytes], entry: _Entry) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= len(old.body)
        self._entries[key] = entry
        self._bytes += len(entry.body)
        while self._bytes > self.MAX_BYTES and self._entries:
            _, evicted = self._entries.popitem(last=False)
            self._bytes -= len(evicted.body)
