"""Live events as Server-Sent Events, resumable with Last-Event-ID; at most
`streams_per_user` open at once for each user (each one holds a connection and wakes with
every event)."""

from __future__ import annotations

import json
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import Receive, Scope, Send

from glasspane.api.deps import CurrentUser, Services, services, viewer
from glasspane.api.schemas import AUTHENTICATED, errors
from glasspane.errors import RateLimited
from glasspane.inventory.events import events_after, latest_event_id

router = APIRouter(tags=["events"], responses=AUTHENTICATED)
KEEPALIVE = 15.0
# Ids are assigned at insert and become visible at commit, so a later id can be seen before
# an earlier one: each read looks this far back and skips what it already sent.
LOOKBACK = 256
# What every database's INTEGER holds (event ids are one): past it PostgreSQL refuses the
# query and SQLite's driver cannot bind it, which would break the stream after its 200.
MAX_ID = 2**31 - 1


class OpenStreams:
    """How many event streams each user has open (all on the event loop: no lock)."""

    def __init__(self, per_user: int) -> None:
        self.per_user = per_user
        self.open: dict[str, int] = {}

    def take(self, user: str) -> Callable[[], None]:
        """One more stream for `user` (RateLimited at the limit); call what it returns,
        once, when the stream ends."""
        count = self.open.get(user, 0)
        if count >= self.per_user:
            raise RateLimited(f"{user} already has {count} live event streams open",
                              retry_after=5, hint="close one (another tab or client) first")
        self.open[user] = count + 1

        def release() -> None:
            left = self.open.pop(user, 1) - 1
            if left:
                self.open[user] = left
        return release


class _CountedStream(StreamingResponse):
    """A stream that gives its place back when it ends, however it ends."""

    def __init__(self, content: AsyncIterator[str], release: Callable[[], None],
                 **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self._release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._release()


@router.get("/events", response_class=StreamingResponse, responses={
    200: {"description": "Server-Sent Events: `id:` (for Last-Event-ID), `event:` (the kind: "
                         "vm.state, task.progress, ...), `data:` (the event as JSON)",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    **errors(429)})
async def events(request: Request, user: CurrentUser = Depends(viewer),
                 found: Services = Depends(services),
                 last_event_id: int | None = Header(None, ge=0, le=MAX_ID),
                 after: int | None = Query(None, ge=0, le=MAX_ID,
                                           description="start after this id")
                 ) -> StreamingResponse:
    """Every event from now (or after Last-Event-ID / `after`) as it happens."""
    def read(since: int) -> list[tuple[int, str, str]]:
        with found.database.session() as session:
            return [(e.id, e.kind, json.dumps({"id": e.id, "kind": e.kind,
                                               "object_type": e.object_type,
                                               "object_name": e.object_name,
                                               "at": e.at.isoformat(), "data": e.data}))
                    for e in events_after(session, since)]

    def latest() -> int:
        with found.database.session() as session:
            return latest_event_id(session)

    start = last_event_id if last_event_id is not None else after
    if start is None:
        start = await run_in_threadpool(latest)

    async def stream() -> AsyncIterator[str]:
        sent: deque[int] = deque(maxlen=LOOKBACK * 4)
        seen = set()
        high = start
        yield "retry: 2000\n\n"
        while not await request.is_disconnected():
            rows = await run_in_threadpool(read, max(start, high - LOOKBACK))
            fresh = [r for r in rows if r[0] not in seen and r[0] > start]
            for event_id, kind, data in fresh:
                if len(sent) == sent.maxlen:
                    seen.discard(sent[0])
                sent.append(event_id)
                seen.add(event_id)
                high = max(high, event_id)
                yield f"id: {event_id}\nevent: {kind}\ndata: {data}\n\n"
            if not fresh and not await found.bus.wait(KEEPALIVE):
                yield ": keep-alive\n\n"

    streams: OpenStreams = request.app.state.streams
    return _CountedStream(stream(), streams.take(user.name), media_type="text/event-stream",
                          headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
