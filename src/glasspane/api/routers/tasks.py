"""Tasks: their listing, one task, cancelling one; all operations of the catalogue
(operations/task_ops.py)."""

from __future__ import annotations

from fastapi import APIRouter

from glasspane.api.operations import add_routes
from glasspane.api.schemas import AUTHENTICATED
from glasspane.operations import task_ops  # noqa: F401 - fills the catalogue
from glasspane.operations.catalogue import CATALOGUE

router = APIRouter(tags=["tasks"], responses=AUTHENTICATED)
add_routes(router, [op for op in CATALOGUE.values() if op.name.startswith("task.")])
