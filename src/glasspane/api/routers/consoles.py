"""VM consoles over WebSockets: `/vms/{host}/{name}/console/serial` (the serial console, to
type into) and `/console/vnc` (the screen, RFB), each relaying bytes both ways in binary
messages, and the ticket call that opens them (operations/consoles.py).

A socket needs the user's session, as every call does (bearer token or the page's cookie),
an operator's role, and a one-time ticket for this user, VM and console (`?ticket=`).  With
the cookie, the socket must also come from this origin: a browser sends cookies with any
page's WebSocket.  Refusals are answered before the upgrade, with the API's statuses, and
audited; so are the opening and the closing of a console.  A console that ends (the VM
stopped) closes its socket cleanly (1000) saying so.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from glasspane.api.deps import COOKIE, CurrentUser, Services
from glasspane.api.middleware import outcome
from glasspane.api.operations import add_routes
from glasspane.enums import ConsoleKind, Role
from glasspane.errors import GlasspaneError
from glasspane.hypervisors.channels import Channel
from glasspane.inventory import audit as audit_log
from glasspane.inventory.users import role_allows
from glasspane.operations.catalogue import CATALOGUE
from glasspane.operations.consoles import console_ticket
from glasspane.vms.console_tickets import TICKETS, TicketRefused
from glasspane.vms.consoles import open_console

router = APIRouter(tags=["consoles"])
add_routes(router, [CATALOGUE[console_ticket.name]])

CHUNK = 1 << 18  # a large frame in few messages; the reader gives what is there


@dataclass
class Refusal(Exception):
    status: int
    detail: str


@dataclass
class Attempt:
    """One socket's request, for its audit entries."""

    found: Services
    noise: audit_log.NoiseBudget
    host: str
    vm: str
    kind: str
    address: str | None
    user: str = "anonymous"

    async def audit(self, action: str, status: int, outcome: str, detail: str = "") -> None:
        found, name = self.found, f"{self.host}/{self.vm}"

        def record() -> None:
            if status >= 400 and self.user == "anonymous":
                self.noise.record(found.database, self.address, self.user, action, "vm", name,
                              outcome, status, detail)
                return
            with found.database.session() as session:
                audit_log.record(session, self.user, action, "vm", name, outcome, status,
                                 detail, self.address)
        await run_in_threadpool(record)


async def _user(websocket: WebSocket, found: Services) -> CurrentUser:
    header = websocket.headers.get("authorization", "")
    secret = header[7:].strip() if header.lower().startswith("bearer ") else None
    if not secret:
        secret = websocket.cookies.get(COOKIE)
        if secret and not _same_origin(websocket):
            raise Refusal(403, "a console opened with the page's cookie must come from the "
                               "page's own origin")
    if not secret:
        raise Refusal(401, "authentication required: log in or send a bearer token")
    user = await found.tokens.resolve(secret, found)
    if user is None:
        raise Refusal(401, "invalid or expired token")
    return user


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    return origin is not None and urlsplit(origin).netloc == websocket.headers.get("host")


async def _refuse(websocket: WebSocket, status: int, detail: str) -> None:
    with contextlib.suppress(RuntimeError):  # a server without denial responses: a 403
        await websocket.send_denial_response(JSONResponse({"detail": detail}, status))
        return
    await websocket.close(code=1008, reason=detail[:120])


@router.websocket("/vms/{host}/{name}/console/{kind}")
async def console_socket(websocket: WebSocket, host: str, name: str, kind: str) -> None:
    found: Services = websocket.app.state.services
    client = websocket.client
    # Socket refusals of clients with no session: recorded within a budget of the
    # application's own, as its other refusals are.
    state = websocket.app.state
    if not hasattr(state, "console_noise"):
        state.console_noise = audit_log.NoiseBudget()
    attempt = Attempt(found, state.console_noise, host, name, kind,
                      client.host if client else None)
    try:
        if kind not in ConsoleKind.__members__.values():
            raise Refusal(404, f"no console {kind[:20]!r}: the consoles are serial and vnc")
        console = ConsoleKind(kind)
        user = await _user(websocket, found)
        attempt.user = user.name
        if not role_allows(user.role, Role.OPERATOR):
            raise Refusal(403, f"{user.name} is a {user.role}; a console needs operator")
        try:
            TICKETS.redeem(websocket.query_params.get("ticket", ""), user.name, host, name,
                           console)
        except TicketRefused as exc:
            raise Refusal(401, str(exc)) from None
        try:
            channel = await run_in_threadpool(open_console, found.settings, name, host,
                                              console)
        except GlasspaneError as exc:
            from glasspane.api.app import status_for  # the app imports this router
            raise Refusal(status_for(exc), str(exc)) from None
    except Refusal as refusal:
        await attempt.audit("console.open", refusal.status, outcome(refusal.status),
                            refusal.detail)
        await _refuse(websocket, refusal.status, refusal.detail)
        return
    await _relay(websocket, channel, attempt, console)


async def _relay(websocket: WebSocket, channel: Channel, attempt: Attempt,
                 console: ConsoleKind) -> None:
    offered = websocket.scope.get("subprotocols", [])
    # noVNC (and websockify's clients) ask for "binary"; the messages are binary either way.
    await websocket.accept(subprotocol="binary" if "binary" in offered else None)
    await attempt.audit("console.open", 101, "succeeded", str(console))
    started, counts = time.monotonic(), [0, 0]
    reader, writer = await asyncio.open_connection(sock=channel.sock)
    ended = "the client closed it"

    async def to_client() -> None:
        nonlocal ended
        while data := await reader.read(CHUNK):
            counts[0] += len(data)
            await websocket.send_bytes(data)
        ended = "the console ended (the VM stopped, or another session took it)"

    async def from_client() -> None:
        while True:
            message = await websocket.receive()
            if message["type"] == "websocket.disconnect":
                return
            data = message.get("bytes") or (message.get("text") or "").encode()
            counts[1] += len(data)
            writer.write(data)
            await writer.drain()

    tasks = [asyncio.ensure_future(to_client()), asyncio.ensure_future(from_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, WebSocketDisconnect, OSError,
                                     RuntimeError):
                await task
        writer.close()
        await run_in_threadpool(channel.close)
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await websocket.close(code=1000, reason=ended)
        await attempt.audit("console.close", 200, "succeeded",
                            f"{console}: {ended} after {time.monotonic() - started:.0f} s; "
                            f"{counts[0]} bytes out, {counts[1]} in")
