"""The audit trail, read-only (admins)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import func, select

from glasspane.api.deps import CurrentUser, Services, admin, page, services
from glasspane.api.results import AuditView
from glasspane.api.schemas import AUTHENTICATED, Page
from glasspane.inventory.models import AuditEntry

router = APIRouter(prefix="/audit", tags=["audit"], responses=AUTHENTICATED)


@router.get("", response_model=Page[AuditView])
def list_audit(_: CurrentUser = Depends(admin), found: Services = Depends(services),
               user: str | None = Query(None, max_length=64),
               action: str | None = Query(None, max_length=64),
               limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10_000_000)
               ) -> dict[str, Any]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc())
    if user:
        query = query.where(AuditEntry.user == user)
    if action:
        query = query.where(AuditEntry.action == action)
    with found.database.session() as session:
        total = session.scalar(select(func.count()).select_from(query.order_by(None)
                                                                .subquery()))
        return page(limit, offset, int(total or 0), [
            {"id": a.id, "at": a.at.isoformat(), "user": a.user, "action": a.action,
             "object_type": a.object_type, "object_name": a.object_name,
             "outcome": a.outcome, "status_code": a.status_code, "detail": a.detail,
             "address": a.address, "count": a.count}
            for a in session.scalars(query.limit(limit).offset(offset))])
