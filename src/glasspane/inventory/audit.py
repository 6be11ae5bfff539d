"""The audit trail: who did what, to which object, when, from where, and how it ended.  Rows
are only ever added (the API has no call that changes or deletes them), with one exception
that keeps the log bounded: what unauthenticated clients are refused is recorded in full
only up to a budget a minute, and past it counted in one row per client address and minute
(`NoiseBudget`)."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import String, update
from sqlalchemy.orm import Session

from glasspane.inventory.db import Database
from glasspane.inventory.models import AuditEntry

DETAIL = 2000  # the detail column is TEXT: capped here all the same
# Every string column's size: a longer value would fail the insert on PostgreSQL (and the
# row would be lost), so values are cut to these first.
CAPS: dict[str, int] = {column.name: column.type.length
                        for column in AuditEntry.__table__.columns
                        if isinstance(column.type, String) and column.type.length}
CAPS["detail"] = DETAIL


def record(session: Session, user: str, action: str, object_type: str, object_name: str,
           outcome: str, status_code: int, detail: str = "", address: str | None = None,
           ) -> int:
    """Add one entry (each field cut to its column's size); its id."""
    fields: dict[str, Any] = {
        "user": user, "action": action, "object_type": object_type,
        "object_name": object_name, "outcome": outcome, "detail": detail, "address": address}
    # A NUL (a refused request's path may hold one) is shown, not stored: PostgreSQL's text
    # cannot hold it, and the insert failing would lose the entry.
    entry = AuditEntry(status_code=status_code, **{
        key: value.replace("\0", "\\0")[:CAPS[key]] if isinstance(value, str) else value
        for key, value in fields.items()})
    session.add(entry)
    session.flush()
    return entry.id


class NoiseBudget:
    """How much of the log unauthenticated clients' refused requests may take each minute:
    the first `per_address` from an address are recorded in full (at most `full_rows` in
    all), the rest from that address counted in one row; past `addresses` addresses with
    such a row, the others share one more.  So a minute adds at most
    full_rows + addresses + 1 rows however many requests come."""

    def __init__(self, per_address: int = 3, full_rows: int = 20, addresses: int = 20,
                 clock: Callable[[], float] = time.time) -> None:
        self.per_address, self.full_rows, self.addresses = per_address, full_rows, addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._minute = -1
        self._full = 0
        self._seen: dict[str | None, int] = {}
        self._counted: dict[str | None, int] = {}  # address (None: the others) -> row id

    def record(self, database: Database, address: str | None, user: str, action: str,
               object_type: str, object_name: str, outcome: str, status_code: int,
               detail: str = "") -> None:
        with self._lock:
            minute = int(self._clock() // 60)
            if minute != self._minute:
                self._minute, self._full = minute, 0
                self._seen.clear()
                self._counted.clear()
            seen = self._seen.get(address, 0)
            if seen < self.per_address and self._full < self.full_rows:
                self._seen[address] = seen + 1
                self._full += 1
                counted = None
            else:
                key = address if address in self._counted or \
                    len(self._counted) < self.addresses else None
                counted = self._counted.get(key)
                if counted is None:  # the first past the budget makes the counting row
                    with database.session() as session:
                        self._counted[key] = record(
                            session, "anonymous", "unauthenticated", "api",
                            f"requests from {key or 'other addresses'}", outcome,
                            status_code, self._summary(minute), key)
                    return
        with database.session() as session:
            if counted is None:
                record(session, user, action, object_type, object_name, outcome,
                       status_code, detail, address)
            else:
                session.execute(update(AuditEntry).where(AuditEntry.id == counted)
                                .values(count=AuditEntry.count + 1))

    def _summary(self, minute: int) -> str:
        start = dt.datetime.fromtimestamp(minute * 60, dt.UTC).strftime("%Y-%m-%d %H:%M")
        return (f"unauthenticated requests refused in the minute from {start} UTC past the "
                f"first {self.per_address} (counted here, not recorded one by one)")
