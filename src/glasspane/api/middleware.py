"""The application's two middlewares, pure ASGI (no per-request task or body copy, so reads
cost nothing extra): request bodies capped, and every change recorded in the audit log with
its outcome."""

from __future__ import annotations

import re

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glasspane.inventory import audit as audit_log
from glasspane.inventory.db import Database

API = "/api/v1"
MAX_BODY = 1 << 20
UPLOAD = re.compile(rf"^{API}/images/[^/]+$")
READS = ("GET", "HEAD", "OPTIONS")


class BodyLimit:
    """413 for request bodies over MAX_BODY, declared or streamed; uploads into the image
    store (PUT /api/v1/images/NAME) are streamed to disk and have their own limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (scope["method"] == "PUT" and
                                       UPLOAD.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            await self._refuse(send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > MAX_BODY:
                raise _TooLarge
            return message

        try:
            await self.app(scope, limited, send)
        except _TooLarge:
            await self._refuse(send)

    @staticmethod
    async def _refuse(send: Send) -> None:
        response = JSONResponse({"detail": f"request body over {MAX_BODY} bytes"}, 413)
        await send({"type": "http.response.start", "status": 413,
                    "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class _TooLarge(Exception):
    pass


def outcome(status: int) -> str:
    if status == 202:
        return "accepted"
    if status < 400:
        return "succeeded"
    if status in (401, 403, 429):
        return "denied"
    return "rejected" if status < 500 else "failed"


class AuditChanges:
    """Records each request that is not a read: who (the user the authentication
    dependency found), what and on which object (named by the route's `audited` dependency,
    else the method and path), the status and its outcome, and the task it queued."""

    def __init__(self, app: ASGIApp, database: Database) -> None:
        self.app, self.database = app, database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        status = 500

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_status)
        finally:
            path = scope["path"]
            action, object_type, object_name, detail = state.get(
                "audit", (f"{scope['method']} {path}", "api", path, ""))
            task = state.get("task")
            if task is not None:
                detail = f"task {task}" + (f"; {detail}" if detail else "")
            user = state.get("user", "anonymous")

            def record() -> None:
                with self.database.session() as session:
                    audit_log.record(session, user, action, object_type, object_name,
                                     outcome(status), status, detail)
            await run_in_threadpool(record)
