"""A number that changes whenever the inventory (hosts, VMs, containers, templates) may have
changed: after every commit that wrote one of those tables in this process, and whenever
another instance sharing the database announces events.  Caches of inventory reads keep the
number they were computed under and are stale once it moves on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event as sa_event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from glasspane.inventory.models import Container, Host, Template, Vm

INVENTORY = (Host, Vm, Container, Template)
_MARK = "inventory_written"


class Generation:
    def __init__(self) -> None:
        self.value = 0

    def bump(self) -> None:
        # Not atomic: two bumps at once may count as one, which is all a reader needs (the
        # number differs from the one it started with).
        self.value += 1

    def attach(self, sessions: Any) -> None:
        """Follow the writes of every session of `sessions` (a sessionmaker)."""
        @sa_event.listens_for(sessions, "after_flush")
        def _flushed(session: Session, _: UOWTransaction) -> None:
            if any(isinstance(obj, INVENTORY)
                   for obj in (*session.new, *session.dirty, *session.deleted)):
                session.info[_MARK] = True

        @sa_event.listens_for(sessions, "do_orm_execute")
        def _executed(state: ORMExecuteState) -> None:
            # Bulk UPDATE/DELETE/INSERT statements bypass the unit of work.
            if (state.is_update or state.is_delete or state.is_insert) and any(
                    mapper.class_ in INVENTORY for mapper in state.all_mappers):
                state.session.info[_MARK] = True

        @sa_event.listens_for(sessions, "after_commit")
        def _committed(session: Session) -> None:
            # After the commit, never before it: a read that starts once the number has
            # moved must see the new rows.
            if session.info.pop(_MARK, False):
                self.bump()

        @sa_event.listens_for(sessions, "after_rollback")
        def _rolled_back(session: Session) -> None:
            session.info.pop(_MARK, None)
