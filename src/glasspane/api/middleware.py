"""The application's middlewares, pure ASGI (no per-request task or body copy, so reads
cost nothing extra): security headers on every answer, request bodies capped in size and
in how long they may stall, and every change recorded in the audit log with its outcome
and the client's address (unauthenticated clients' refusals within a budget)."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import unquote_to_bytes

from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from glasspane.errors import GlasspaneError, RequestTimeout, UsageError
from glasspane.inventory import audit as audit_log
from glasspane.inventory.db import Database

API = "/api/v1"
MAX_BODY = 1 << 20
UPLOAD = re.compile(rf"^{API}/images/[^/]+$")
READS = ("GET", "HEAD", "OPTIONS")
# The page loads nothing but its own files (no inline script or style, no CDN); nothing may
# frame it; no address leaves in a Referer.
SECURITY_HEADERS = [
    (b"content-security-policy",
     b"default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
     b"form-action 'self'; frame-ancestors 'none'"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class HttpMiddleware:
    """What every middleware here shares: what is not an HTTP request (the lifespan, a
    websocket) or not for it (`passes`) goes to the application untouched; the rest to
    `http`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    def passes(self, scope: Scope) -> bool:
        return bool(scope["type"] != "http")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.passes(scope):
            await self.app(scope, receive, send)
        else:
            await self.http(scope, receive, send)

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        raise NotImplementedError


class SecurityHeaders(HttpMiddleware):
    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                present = {name.lower() for name, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (name, value) for name, value in SECURITY_HEADERS if name not in present]
            await send(message)
        await self.app(scope, receive, with_headers)


class BodyLimit(HttpMiddleware):
    """413 for request bodies over MAX_BODY, declared or streamed (uploads into the image
    store, PUT /api/v1/images/NAME, are streamed to disk and have their own limit), and 408
    for a body that goes `timeout` s without a byte (an upload that stops halfway is
    dropped, not held open, and its connection closed).  Either answer replaces whatever
    the application made of the cut-off body."""

    def __init__(self, app: ASGIApp, timeout: float) -> None:
        super().__init__(app)
        self.timeout = timeout

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        capped = not (scope["method"] == "PUT" and UPLOAD.match(scope["path"]))
        declared = dict(scope["headers"]).get(b"content-length")
        if capped and declared is not None and (not declared.isdigit() or
                                                int(declared) > MAX_BODY):
            await _refuse(send, 413, _too_large())
            return
        seen, complete, started = 0, False, False
        refusal: tuple[int, GlasspaneError] | None = None

        async def guarded() -> Message:
            nonlocal seen, complete, refusal
            if complete:  # past the body: waiting for the client to go is not a stall
                return await receive()
            try:
                message = await asyncio.wait_for(receive(), self.timeout)
            except TimeoutError:
                refusal = 408, RequestTimeout(f"the request body stopped arriving for "
                                              f"{self.timeout:g} s", hint="send it again")
                raise refusal[1] from None
            seen += len(message.get("body", b""))
            complete = not message.get("more_body", False)
            if capped and seen > MAX_BODY:
                refusal = 413, _too_large()
                raise refusal[1]
            return message

        async def answering(message: Message) -> None:
            nonlocal started
            if refusal is None or started:
                started = True
                await send(message)

        try:
            await self.app(scope, guarded, answering)
        except Exception:
            if refusal is None:
                raise
        if refusal is not None and not started:
            await _refuse(send, *refusal)


class NoNul(HttpMiddleware):
    """400 for a NUL character anywhere in a request: its path, its query or (escaped as
    \\u0000) a JSON body.  No name, text or path of glasspane's holds one; PostgreSQL's text
    cannot (the query would fail with a 500), and neither can a program's argument.  Uploads
    into the image store are files, not texts, and go through untouched."""

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        query = unquote_to_bytes(scope.get("query_string", b"").replace(b"+", b" "))
        if "\0" in scope["path"] or b"\0" in query:
            await _refuse(send, 400, _nul("its path or query"))
            return
        if scope["method"] in READS or (scope["method"] == "PUT" and
                                        UPLOAD.match(scope["path"])):
            await self.app(scope, receive, send)
            return
        messages = []
        while True:  # a change's body is small (BodyLimit caps it) and read whole anyway
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request" or not message.get("more_body", False):
                break
        if JSON_NUL.search(b"".join(m.get("body", b"") for m in messages)):
            await _refuse(send, 400, _nul("its body"))
            return
        replay = iter(messages)

        async def replayed() -> Message:
            return next(replay, None) or await receive()
        await self.app(scope, replayed, send)


# The JSON escape of a NUL: "\u0000" after an even number of backslashes (an odd number
# would make it a backslash and the text "u0000").
JSON_NUL = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


def _nul(where: str) -> UsageError:
    return UsageError(f"the request has a NUL character in {where}",
                      hint="no name, text or path glasspane keeps may hold one")


def _too_large() -> UsageError:
    return UsageError(f"request body over {MAX_BODY} bytes")


async def _refuse(send: Send, status: int, refusal: GlasspaneError) -> None:
    # A stalled body will not come back: the connection goes.  The rest of a body too large
    # may still be on its way; the transport closes the connection if it keeps coming.
    response = JSONResponse({"detail": str(refusal)}, status,
                            headers={"Connection": "close"} if status == 408 else None)
    await send({"type": "http.response.start", "status": status,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


def outcome(status: int) -> str:
    if status == 202:
        return "accepted"
    if status < 400:
        return "succeeded"
    if status in (401, 403, 429):
        return "denied"
    return "rejected" if status < 500 else "failed"


class AuditChanges(HttpMiddleware):
    """Records each request that is not a read: who (the user the authentication
    dependency found), what and on which object (named by the route's `audited` dependency,
    else the method and path), the status and its outcome, the task it queued and the
    client's address.  A refusal of a client that did not authenticate goes through the
    noise budget: past it, such refusals are counted rather than recorded one by one."""

    def __init__(self, app: ASGIApp, database: Database,
                 budget: audit_log.NoiseBudget) -> None:
        super().__init__(app)
        self.database, self.budget = database, budget

    def passes(self, scope: Scope) -> bool:
        return super().passes(scope) or scope["method"] in READS

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
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
            client = scope.get("client")
            address = client[0] if client else None
            noise = status >= 400 and not state.get("authenticated")

            def record() -> None:
                if noise:
                    self.budget.record(self.database, address, user, action, object_type,
                                       object_name, outcome(status), status, detail)
                    return
                with self.database.session() as session:
                    audit_log.record(session, user, action, object_type, object_name,
                                     outcome(status), status, detail, address)
            await run_in_threadpool(record)
