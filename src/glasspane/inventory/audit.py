"""The audit trail: who did what, to which object, when, and how it ended.  Rows are only
ever added (the API has no call that changes or deletes them)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from glasspane.inventory.models import AuditEntry


def record(session: Session, user: str, action: str, object_type: str, object_name: str,
           outcome: str, status_code: int, detail: str = "") -> None:
    session.add(AuditEntry(user=user, action=action, object_type=object_type,
                           object_name=object_name, outcome=outcome, status_code=status_code,
                           detail=detail[:2000]))
