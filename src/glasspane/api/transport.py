"""How the application is served: uvicorn over h11 with the limits uvicorn lacks.

uvicorn calls the application only once a request's head is complete, and its keep-alive
timer stops at the first byte, so a client that sends half a head (or one byte a minute)
holds a connection forever; nor does it bound the connections it holds.  The protocol here
closes a connection whose head does not arrive within `header_timeout` of its start (or of
the last answer on it), answers 503 to connections beyond `max_connections`, and closes a
connection whose request body, left unread by its answer, is still coming by then.
Proxy headers (X-Forwarded-For, X-Forwarded-Proto) are believed only from
`trusted_proxies`, none by default."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import h11
import uvicorn
from fastapi import FastAPI
from uvicorn.protocols.http.h11_impl import H11Protocol

from glasspane.api.limits import ServerLimits


def _plain(status: str, text: str, *headers: str) -> bytes:
    body = text.encode() + b"\n"
    head = [f"HTTP/1.1 {status}", "Connection: close", "Content-Type: text/plain",
            f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


BUSY = _plain("503 Service Unavailable", "too many connections; try again", "Retry-After: 1")
TIMED_OUT = _plain("408 Request Timeout", "the request's head did not arrive in time")


class GuardedH11Protocol(H11Protocol):
    limits = ServerLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.limits.max_connections:
            transport.write(BUSY)
            transport.close()
            return
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._await_head()

    def _await_head(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.limits.header_timeout, self._head_late)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_late(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        # IDLE: the head of the next request is not complete yet (h11 leaves IDLE the moment
        # it parses a whole head; a request being answered is past it).
        if self.conn.their_state is h11.IDLE:
            if self.conn.trailing_data[0]:  # a part of a head: say why it is cut off
                self.transport.write(TIMED_OUT)
            self.transport.close()
        # Answered before its body was read (refused, too large), and the rest of the body
        # still coming, however slowly: uvicorn would wait for it for ever.
        elif self.conn.their_state is h11.SEND_BODY and self.conn.our_state is h11.DONE:
            self.transport.close()


def protocol_for(limits: ServerLimits) -> type[GuardedH11Protocol]:
    class Protocol(GuardedH11Protocol):
        pass
    Protocol.limits = limits
    return Protocol


def server_config(app: FastAPI, host: str, port: int, *, tls_cert: Path | None = None,
                  tls_key: Path | None = None, log_level: str = "warning") -> uvicorn.Config:
    """The uvicorn configuration serving `app` with its limits (`app.state.limits`)."""
    limits: ServerLimits = app.state.limits
    return uvicorn.Config(
        app, host=host, port=port, log_level=log_level, http=protocol_for(limits),
        proxy_headers=bool(limits.trusted_proxies),
        forwarded_allow_ips=list(limits.trusted_proxies) or None,
        timeout_keep_alive=5, server_header=False,
        ssl_certfile=str(tls_cert) if tls_cert else None,
        ssl_keyfile=str(tls_key) if tls_key else None)
