"""Events: every change glasspane sees or makes (a VM's state, a task's progress) is a row in
`events`, whose id is the SSE event id, so a client that reconnects with Last-Event-ID misses
nothing.  Listeners are woken in this process when a transaction that added events commits,
and in every other instance sharing the PostgreSQL database through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import String, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session

from glasspane.inventory.models import Event

CHANNEL = "glasspane_events"
log = logging.getLogger("glasspane.events")


# The column's size: a longer name fails the insert on PostgreSQL.
OBJECT_NAME = cast(String, Event.__table__.c.object_name.type).length or 512


def publish(session: Session, kind: str, object_type: str, object_name: str, /,
            **data: Any) -> None:
    """Record an event; listeners hear of it once the session commits."""
    session.add(Event(kind=kind, object_type=object_type,
                      object_name=object_name[:OBJECT_NAME], data=data))
    session.info["events"] = True
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


def events_after(session: Session, after: int, limit: int = 500) -> list[Event]:
    return list(session.scalars(select(Event).where(Event.id > after).order_by(Event.id)
                                .limit(limit)))


def latest_event_id(session: Session) -> int:
    last = session.scalar(select(Event.id).order_by(Event.id.desc()).limit(1))
    return int(last or 0)


class EventBus:
    """Wakes waiting SSE streams (asyncio) when events have been committed."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()
        self._stop = threading.Event()
        # Called when another instance announces events (and, on PostgreSQL, our own too).
        self.on_notify: list[Callable[[], None]] = []

    def wake(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, flag in waiters:
            try:
                loop.call_soon_threadsafe(flag.set)
            except RuntimeError:  # that loop has closed
                continue

    async def wait(self, timeout: float) -> bool:
        """Until events are committed (True) or `timeout` passes (False)."""
        flag = asyncio.Event()
        entry = (asyncio.get_running_loop(), flag)
        with self._lock:
            self._waiters.add(entry)
        try:
            await asyncio.wait_for(flag.wait(), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            with self._lock:
                self._waiters.discard(entry)

    def attach(self, sessions: Any) -> None:
        """Wake listeners after every commit of a session (of this sessionmaker) that
        published events."""
        @sa_event.listens_for(sessions, "after_commit")
        def _committed(session: Session) -> None:
            if session.info.pop("events", False):
                self.wake()

    def listen_postgres(self, dsn: str) -> threading.Thread:
        """Wake listeners on other instances' events (NOTIFY), until `stop`."""
        thread = threading.Thread(target=self._listen, args=(dsn,), daemon=True,
                                  name="glasspane-listen")
        thread.start()
        return thread

    def _listen(self, dsn: str) -> None:
        import psycopg
        while not self._stop.is_set():
            try:
                with psycopg.connect(dsn, autocommit=True) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    while not self._stop.is_set():
                        heard = False
                        for _ in connection.notifies(timeout=1.0, stop_after=64):
                            heard = True
                        if heard:
                            for hook in self.on_notify:
                                hook()
                            self.wake()
            except psycopg.Error as exc:
                log.warning("event listener: %s; reconnecting", exc)
                self._stop.wait(2)

    def stop(self) -> None:
        self._stop.set()
